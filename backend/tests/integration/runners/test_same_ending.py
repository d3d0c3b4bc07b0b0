"""The same script ends the same way on every runner, cold or warm: one classifier (runners/ending.py).

Each script runs on the local runner (fresh and warm sandboxes) and on the Kubernetes runner against the
stand-in API server (which runs pods as local sandboxes, the pod's memory limit a cgroup), with cold and
warm pods; and on the local Kubernetes 1.20 (`real_kubernetes`) through the session's Podrun, whose
reaper would take the pods of a runner it does not know for orphans (its overlay has no warm pool, so
those pods are cold). A warm pod's cgroup has the largest memory limit, so there a run's own memory
limit is the harness's address-space rlimit: the script dies of a MemoryError instead of an OOM kill,
and the run must still say MEMORY. What is compared is what a user is told: the status, the limit, the
error, and the output.
"""

from __future__ import annotations

import json
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from podrun.core.limits import LimitKind, Limits
from podrun.core.output import Stream
from podrun.core.statuses import ExecutionStatus
from podrun.executions.outcomes import classify
from podrun.runners.base import OutputBytes, Runner, SandboxSpec, sandbox_name
from podrun.runners.kubernetes import KubernetesRunner
from podrun.runners.kubernetes.pod import WARM_PREFIX
from podrun.runners.local import LocalRunner, LocalSandbox
from podrun.settings import KubernetesSettings, SandboxSettings, Settings
from tests.client import GraphQLClient
from tests.e2e.helpers import collect, final, lines, submit
from tests.kubernetes_local.fixtures import RealPodrun
from tests.kubernetes_standin.server import StandInServer
from tests.waiting import until

LIMITS = Limits(wall_time_ms=20_000, cpu_time_ms=10_000, memory_mib=256, output_bytes=1 << 20, processes=16)
MIB = 1024 * 1024
STANDIN_RUNTIME = "python-3.12"


@dataclass(frozen=True)
class Told:
    """What a user is told of a run."""

    status: ExecutionStatus
    limit: LimitKind | None
    error: str | None
    stdout: str


# (script, limits, what every runner must tell)
CASES = {
    "succeeded": ("print('ok')", {}, Told(ExecutionStatus.SUCCEEDED, None, None, "ok\n")),
    "exit-3": ("import sys\nprint('bye')\nsys.exit(3)", {}, Told(ExecutionStatus.FAILED, None, None, "bye\n")),
    "wall": (
        "import time\nprint('started', flush=True)\ntime.sleep(3600)",
        {"wall_time_ms": 2000},
        Told(ExecutionStatus.TIMED_OUT, LimitKind.WALL_TIME, None, "started\n"),
    ),
    "cpu": (
        "print('spinning', flush=True)\nwhile True:\n    pass",
        {"cpu_time_ms": 1000},
        Told(ExecutionStatus.TIMED_OUT, LimitKind.CPU_TIME, None, "spinning\n"),
    ),
    "memory": (
        "print('allocating', flush=True)\ndata = bytearray(600 * 1024 * 1024)\nprint('allocated')",
        {"memory_mib": 128},
        Told(ExecutionStatus.FAILED, LimitKind.MEMORY, None, "allocating\n"),
    ),
}


@dataclass
class Subject:
    """A runner, and whether its runs must be served by sandboxes started ahead of them."""

    runner: Runner
    warm: bool


def local_runner(warm: bool) -> Runner:
    sandbox = SandboxSettings(tmp_mib=64, shm_mib=40, warm_pool_size=2 if warm else 0)
    return LocalRunner(Settings(jwt_secret="test-secret", sandbox=sandbox))


def kubernetes_settings(kubeconfig: Path, warm: bool, **kubernetes: object) -> Settings:
    return Settings(
        kubernetes=KubernetesSettings(
            kubeconfig=str(kubeconfig),
            startup_allowance_s=30,
            watch_timeout_s=5,
            warm_pool_size=2 if warm else 0,
            **kubernetes,
        )
    )


@pytest.fixture(scope="module")
def standin_kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    server = StandInServer(Settings()).start()
    try:
        yield server.write_kubeconfig(tmp_path_factory.mktemp("same-ending") / "kubeconfig")
    finally:
        server.stop()


SUBJECTS = [
    pytest.param(("local", False), id="local-cold"),
    pytest.param(("local", True), id="local-warm"),
    pytest.param(("standin", False), id="kubernetes-standin-cold"),
    pytest.param(("standin", True), id="kubernetes-standin-warm"),
]


@pytest.fixture(scope="module", params=SUBJECTS)
async def subject(request: pytest.FixtureRequest) -> AsyncIterator[Subject]:
    kind, warm = request.param
    runner: Runner
    if kind == "local":
        runner = local_runner(warm)
    else:
        kubeconfig = request.getfixturevalue("standin_kubeconfig")
        runtimes = {STANDIN_RUNTIME: "python:3.12-slim"}
        runner = KubernetesRunner(
            kubernetes_settings(kubeconfig, warm, runtimes=runtimes, default_runtime=STANDIN_RUNTIME)
        )
    await runner.open(f"same-ending-{uuid.uuid4().hex[:8]}")
    try:
        yield Subject(runner, warm)
    finally:
        await runner.close()


def default_runtime(runner: Runner) -> str:
    return next(runtime.id for runtime in runner.runtimes() if runtime.default)


def served_warm(sandbox: object) -> bool:
    if isinstance(sandbox, LocalSandbox):
        return sandbox.warm
    return str(getattr(sandbox, "name", "")).startswith(WARM_PREFIX)


@pytest.mark.parametrize("case", CASES.keys())
async def test_the_same_script_ends_the_same_way_everywhere(subject: Subject, case: str) -> None:
    script, limits, expected = CASES[case]
    runtime = default_runtime(subject.runner)
    pool = getattr(subject.runner, "pool", None)
    if subject.warm:
        assert pool is not None
        pool.warm(runtime)
        await until(lambda: pool.sizes().get(runtime, 0) > 0, timeout=120)
    spec = SandboxSpec(
        name=sandbox_name(uuid.uuid4()),
        runtime_id=runtime,
        script=textwrap.dedent(script),
        stdin=b"",
        limits=LIMITS.model_copy(update=limits),
    )
    sandbox = await subject.runner.start(spec)
    assert served_warm(sandbox) is subject.warm
    await sandbox.close_stdin()
    stdout = b""
    async for output in sandbox.output():
        if isinstance(output, OutputBytes) and output.stream is Stream.STDOUT:
            stdout += output.data
    outcome = classify(await sandbox.wait(), cancelled=False, output_truncated=False)
    told = Told(outcome.status, outcome.limit_exceeded, outcome.error, stdout.decode())
    assert told == expected, json.dumps({"exit_code": outcome.exit_code, "signal": outcome.signal})


@pytest.mark.real_kubernetes
@pytest.mark.parametrize("case", CASES.keys())
async def test_the_same_script_ends_the_same_way_on_the_real_cluster(real_podrun: RealPodrun, case: str) -> None:
    script, limits, expected = CASES[case]
    client = await GraphQLClient(real_podrun.deployment.base_url).register()
    requested = {Limits.field_label(name): value for name, value in limits.items()}
    events = await collect(client, await submit(client, textwrap.dedent(script), limits=requested))
    ended = final(events)
    limit = LimitKind(ended["limitExceeded"]) if ended["limitExceeded"] else None
    stdout = "".join(f"{line}\n" for line in lines(events))
    assert Told(ExecutionStatus(ended["status"]), limit, ended["error"], stdout) == expected, ended
