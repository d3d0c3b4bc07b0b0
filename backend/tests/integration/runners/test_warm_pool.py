"""Warm sandboxes on this host: each serves one run, nothing carries over, the pool refills and shrinks."""

from __future__ import annotations

import json
import textwrap
import uuid
from collections.abc import AsyncIterator

import pytest

from podrun.core.limits import LimitKind, Limits
from podrun.core.output import Stream
from podrun.runners.base import SandboxResult, SandboxSpec, sandbox_name
from podrun.runners.local import LocalRunner, LocalSandbox
from podrun.settings import SandboxSettings, Settings
from tests.waiting import until

LIMITS = Limits(wall_time_ms=10_000, cpu_time_ms=5_000, memory_mib=256, output_bytes=1024 * 1024, processes=16)


@pytest.fixture
async def runner() -> AsyncIterator[LocalRunner]:
    runner = LocalRunner(Settings(jwt_secret="test-secret", sandbox=SandboxSettings(warm_pool_size=2)))
    await runner.open("test-worker")
    yield runner
    await runner.close()


def default_runtime(runner: LocalRunner) -> str:
    return next(runtime.id for runtime in runner.runtimes() if runtime.default)


async def run(runner: LocalRunner, script: str, limits: Limits = LIMITS) -> tuple[LocalSandbox, str, SandboxResult]:
    spec = SandboxSpec(
        name=sandbox_name(uuid.uuid4()),
        runtime_id=default_runtime(runner),
        script=textwrap.dedent(script),
        stdin=None,
        limits=limits,
    )
    sandbox = await runner.start(spec)
    assert isinstance(sandbox, LocalSandbox)
    await sandbox.close_stdin()
    stdout = b"".join([chunk.data async for chunk in sandbox.output() if chunk.stream is Stream.STDOUT])
    return sandbox, stdout.decode(), await sandbox.wait()


async def test_the_pool_fills_refills_after_a_take_and_serves_warm(runner: LocalRunner) -> None:
    runtime = default_runtime(runner)
    await until(lambda: runner.pool.sizes().get(runtime) == 2)
    sandbox, stdout, _ = await run(runner, "print('hi')")
    assert (sandbox.warm, stdout) == (True, "hi\n")
    await until(lambda: runner.pool.sizes().get(runtime) == 2)


async def test_nothing_of_one_run_reaches_the_next(runner: LocalRunner) -> None:
    runtime = default_runtime(runner)
    await until(lambda: runner.pool.sizes().get(runtime) == 2)
    first, _, first_result = await run(
        runner,
        """
        import json, os, subprocess, time
        open("/tmp/left-behind", "w").write("secret")
        os.environ["LEFT_BEHIND"] = "1"
        json.left_behind = True
        subprocess.Popen(["sleep", "60"], start_new_session=True)
        end = time.process_time() + 0.5
        while time.process_time() < end:
            pass
        """,
    )
    second, stdout, second_result = await run(
        runner,
        """
        import json, os
        print(json.dumps({
            "tmp": sorted(os.listdir("/tmp")),
            "env": "LEFT_BEHIND" in os.environ,
            "module": hasattr(json, "left_behind"),
            "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        }))
        """,
    )
    assert (first.warm, second.warm) == (True, True)
    assert json.loads(stdout) == {"tmp": ["main.py", "outputs"], "env": False, "module": False, "processes": [1, 2]}
    assert first_result.usage.cpu_time_ms >= 400
    # The second run's cgroup is its own: the first one's CPU time is not in its figures.
    assert second_result.usage.cpu_time_ms < 200


async def test_a_warm_sandbox_takes_the_runs_limits(runner: LocalRunner) -> None:
    await until(lambda: runner.pool.sizes().get(default_runtime(runner)) == 2)
    small = LIMITS.model_copy(update={"memory_mib": 64})
    sandbox, _, result = await run(
        runner, "data = bytearray(200 * 1024 * 1024)\ndata[::4096] = b'x' * len(data[::4096])", small
    )
    assert sandbox.warm
    assert result.limit_exceeded is LimitKind.MEMORY


async def test_a_claimed_sandbox_runs_in_a_cgroup_named_after_its_run(runner: LocalRunner) -> None:
    runtime = default_runtime(runner)
    await until(lambda: runner.pool.sizes().get(runtime) == 2)
    if runner.cgroups.version is None:
        pytest.fail("this host enforces no cgroups: the claim's cgroup cannot be checked here")
    waiting = runner.pool.runtimes[runtime].ready[0].cgroup  # the one the next take gets
    assert waiting is not None
    waited_in = list(waiting.dirs.values())
    name = sandbox_name(uuid.uuid4())
    spec = SandboxSpec(name=name, runtime_id=runtime, script="input()", stdin=None, limits=LIMITS)
    sandbox = await runner.start(spec)
    try:
        assert isinstance(sandbox, LocalSandbox)
        assert sandbox.warm
        assert sandbox.cgroup is not None
        assert sandbox.cgroup.dirs == runner.cgroups.dirs(name)
        # v1 renames the cgroup it waited in, v2 moves its processes out of it: either way that one is gone.
        assert not any(directory.exists() for directory in waited_in if directory not in sandbox.cgroup.dirs.values())
        assert sandbox.process.pid in sandbox.cgroup.pids()
    finally:
        await sandbox.kill()
        await sandbox.wait()
    assert not any(directory.exists() for directory in runner.cgroups.dirs(name).values())


async def test_close_stops_every_warm_sandbox(runner: LocalRunner) -> None:
    runtime = default_runtime(runner)
    await until(lambda: runner.pool.sizes().get(runtime) == 2)
    # This runner's own (other workers on the host keep warm sandboxes in the same parent cgroups).
    ready = runner.pool.runtimes[runtime].ready
    warm = [directory for sandbox in ready if sandbox.cgroup for directory in sandbox.cgroup.dirs.values()]
    assert warm or runner.cgroups.version is None
    await runner.close()
    assert runner.pool.sizes() == {runtime: 0}
    assert not any(directory.exists() for directory in warm)


async def test_an_idle_runtime_lets_its_sandboxes_go() -> None:
    runner = LocalRunner(
        Settings(jwt_secret="test-secret", sandbox=SandboxSettings(warm_pool_size=1, warm_pool_idle_s=0.5))
    )
    await runner.open("test-worker")
    try:
        runtime = default_runtime(runner)
        await until(lambda: runner.pool.sizes().get(runtime) == 1)
        await until(lambda: runner.pool.sizes().get(runtime) == 0, timeout=5)
        # The next run starts cold and warms the runtime again.
        sandbox, stdout, _ = await run(runner, "print('cold')")
        assert (sandbox.warm, stdout) == (False, "cold\n")
        await until(lambda: runner.pool.sizes().get(runtime) == 1)
    finally:
        await runner.close()
