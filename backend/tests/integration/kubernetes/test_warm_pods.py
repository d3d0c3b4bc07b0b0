"""Warm pods: the Kubernetes runner's pool of pods made ahead of their runs, driven in-process.

Against a stand-in of its own (the session cluster's reaper would take these pods for leftovers).
A "worker" here is a KubernetesRunner opened with a worker id; one that "dies" is abandoned, its pods
left as a killed process would leave them.
"""

from __future__ import annotations

import json
import re
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.client import V1ObjectMeta, V1Pod

from podrun.core.limits import Limits
from podrun.core.output import Stream
from podrun.runners.base import OutputBytes, SandboxResult, SandboxSpec, sandbox_name
from podrun.runners.bundle import harness_files
from podrun.runners.kubernetes.pod import (
    HARNESS_KEY,
    LABEL_EXECUTION,
    LABEL_OWNER,
    LABEL_WARM,
    WARM_COMMAND,
    active_deadline_s,
    warm_deadline_s,
)
from podrun.runners.kubernetes.runner import KubernetesRunner
from podrun.runners.kubernetes.sandbox import PodSandbox
from podrun.settings import KubernetesSettings, Settings
from tests.kubernetes_standin.server import FakePod, StandIn, StandInServer
from tests.waiting import until

RUNTIME = "python-3.12"
LIMITS = Limits(wall_time_ms=20_000, cpu_time_ms=10_000, memory_mib=256, output_bytes=1 << 20, processes=16)


@pytest.fixture(scope="module")
def server() -> Iterator[StandInServer]:
    running = StandInServer(Settings()).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def standin(server: StandInServer) -> StandIn:
    assert server.state is not None
    return server.state


@pytest.fixture(scope="module")
def kubeconfig(server: StandInServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return server.write_kubeconfig(tmp_path_factory.mktemp("warm") / "kubeconfig")


def settings(kubeconfig: Path, **kubernetes: Any) -> Settings:
    defaults: dict[str, Any] = {"startup_allowance_s": 20, "watch_timeout_s": 5, "warm_pool_size": 2}
    return Settings(
        kubernetes=KubernetesSettings(
            kubeconfig=str(kubeconfig),
            runtimes={RUNTIME: "python:3.12-slim"},
            default_runtime=RUNTIME,
            **(defaults | kubernetes),
        )
    )


@pytest.fixture
async def worker(kubeconfig: Path) -> AsyncIterator[KubernetesRunner]:
    """A runner as a worker opens it, its pool full."""
    runner = KubernetesRunner(settings(kubeconfig))
    await runner.open("worker-" + uuid.uuid4().hex)
    await until(lambda: runner.pool.sizes().get(RUNTIME) == 2)
    yield runner
    await runner.close()


@pytest.fixture
async def successor(kubeconfig: Path) -> AsyncIterator[KubernetesRunner]:
    """The worker that takes runs over (its own pool off, so whatever serves a run is the one it found or made)."""
    runner = KubernetesRunner(settings(kubeconfig, warm_pool_size=0))
    await runner.open("successor-" + uuid.uuid4().hex)
    yield runner
    await runner.close()


def spec(script: str, limits: Limits = LIMITS, stdin: bytes | None = None) -> SandboxSpec:
    return SandboxSpec(sandbox_name(uuid.uuid4()), RUNTIME, textwrap.dedent(script), stdin, limits)


def waiting_pods(runner: KubernetesRunner) -> list[str]:
    return [pod.name for pod in runner.pool.runtimes[RUNTIME].ready]


def pods_of(standin: StandIn, owner: str) -> set[str]:
    return {name for name, pod in standin.pods.items() if pod.manifest["metadata"]["labels"].get(LABEL_OWNER) == owner}


def frames(pod: FakePod) -> str:
    """The tags of the frames in the pod's log, one letter each."""
    return "".join(line[:1].decode() for _, line in pod.logs)


async def first_line(output: AsyncIterator[OutputBytes]) -> bytes:
    """The script's first line of stdout (a print may reach the log in more than one frame)."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = await anext(output)
        assert chunk.stream is Stream.STDOUT
        line += chunk.data
    return line


async def run(runner: KubernetesRunner, run_spec: SandboxSpec) -> tuple[PodSandbox, str, SandboxResult]:
    sandbox = await runner.start(run_spec)
    assert isinstance(sandbox, PodSandbox)
    stdout = b"".join([chunk.data async for chunk in sandbox.output() if chunk.stream is Stream.STDOUT])
    return sandbox, stdout.decode(), await sandbox.wait()


async def always(_: object) -> bool:
    return True


async def never(_: object) -> bool:
    return False


async def test_a_warm_pod_serves_a_run_and_streams_its_output(worker: KubernetesRunner, standin: StandIn) -> None:
    waiting = waiting_pods(worker)
    run_spec = spec("import time\nprint('first', flush=True)\ntime.sleep(1)\nprint('second')\n")
    sandbox = await worker.start(run_spec)
    assert isinstance(sandbox, PodSandbox)
    assert sandbox.name == waiting[0]
    output = sandbox.output()
    assert await first_line(output) == b"first\n"
    pod = standin.pods[sandbox.name]  # still there: a live follow, not a read after the end
    rest = b"".join([chunk.data async for chunk in output])
    result = await sandbox.wait()
    assert (rest, result.exit_code, result.error) == (b"second\n", 0, None)
    assert re.fullmatch("RSO+X", frames(pod))

    # Made from settings alone, claimed by a label and a lower deadline, deleted after its one run (in the
    # background: the exit frame ended the run).
    await until(lambda: sandbox.name in standin.deleted)
    created = standin.created_specs[sandbox.name]
    final = standin.deleted_manifests[sandbox.name]
    container = created["containers"][0]
    assert (container["command"], container["stdin"]) == (WARM_COMMAND, True)
    assert container["resources"]["limits"]["memory"] == "1024Mi"  # the largest limits
    assert created["activeDeadlineSeconds"] == warm_deadline_s(worker.settings)
    labels = final["metadata"]["labels"]
    assert (labels[LABEL_EXECUTION], labels[LABEL_WARM], labels[LABEL_OWNER]) == (
        run_spec.name[7:],
        "true",
        worker.owner,
    )
    waited_s = final["spec"]["activeDeadlineSeconds"] - active_deadline_s(LIMITS, worker.settings)
    assert 1 <= waited_s <= 60
    assert {**final["spec"], "activeDeadlineSeconds": None} == {**created, "activeDeadlineSeconds": None}
    assert "first" not in json.dumps(created)
    # The pool refills: a new pod takes the served one's place.
    await until(lambda: len(waiting_pods(worker)) == 2 and sandbox.name not in waiting_pods(worker))


async def test_a_warm_pods_config_map_holds_the_harness_alone(worker: KubernetesRunner, standin: StandIn) -> None:
    name = waiting_pods(worker)[0]
    config_map = standin.config_maps[name]
    # The harness and the modules it imports, nothing of any run.
    assert set(config_map["data"]) == set(harness_files())
    assert HARNESS_KEY in config_map["data"]
    assert config_map["metadata"]["ownerReferences"][0]["name"] == name


async def test_nothing_of_one_run_reaches_the_next(worker: KubernetesRunner, standin: StandIn) -> None:
    first, out, result = await run(
        worker,
        spec("""
            import os, subprocess, json
            open('/tmp/leftover', 'w').write('secret')
            os.environ['LEFTOVER'] = 'secret'
            json.leftover = 'secret'
            subprocess.Popen(['sleep', '60'])
            print(sorted(os.listdir('/tmp')), len([p for p in os.listdir('/proc') if p.isdigit()]))
        """),
    )
    assert (out, result.exit_code) == ("['leftover', 'main.py', 'outputs'] 3\n", 0)
    second, out, result = await run(
        worker,
        spec("""
            import os, json
            print(sorted(os.listdir('/tmp')), 'LEFTOVER' in os.environ, hasattr(json, 'leftover'))
            print(len([p for p in os.listdir('/proc') if p.isdigit()]))
        """),
    )
    assert (out, result.exit_code) == ("['main.py', 'outputs'] False False\n2\n", 0)
    assert first.name != second.name
    await until(lambda: {first.name, second.name} <= set(standin.deleted))


MEMORY = """
    try:
        data = bytearray(300 * 1024 * 1024)
        print('allocated')
    except MemoryError:
        print('MemoryError')
"""


@pytest.mark.parametrize(("memory_mib", "outcome"), [(128, "MemoryError\n"), (512, "allocated\n")])
async def test_a_runs_own_memory_limit_holds_in_a_warm_pod(
    worker: KubernetesRunner, standin: StandIn, memory_mib: int, outcome: str
) -> None:
    sandbox, out, result = await run(worker, spec(MEMORY, LIMITS.model_copy(update={"memory_mib": memory_mib})))
    assert (out, result.exit_code) == (outcome, 0)
    # The same pod either way: its cgroup has the largest limit, the run's own is the harness's rlimit.
    assert sandbox.name.startswith("podrun-warm-")
    assert standin.created_specs[sandbox.name]["containers"][0]["resources"]["limits"]["memory"] == "1024Mi"


@pytest.mark.parametrize("dead", [1, 2])
async def test_warm_pods_that_died_while_waiting_are_skipped(
    worker: KubernetesRunner, standin: StandIn, dead: int
) -> None:
    waiting = waiting_pods(worker)
    for name in waiting[:dead]:
        standin.call(lambda name=name: standin.kill(standin.pods[name]))
    await until(lambda: all(standin.pods[name].ended for name in waiting[:dead]))
    run_spec = spec("print('served')")
    sandbox, out, result = await run(worker, run_spec)
    assert (out, result.exit_code) == ("served\n", 0)
    # Served by the pod still waiting, or by a pod of its own when none is left.
    assert sandbox.name == (waiting[1] if dead == 1 else run_spec.name)
    assert all(name in standin.deleted for name in waiting[:dead])


async def test_close_deletes_the_waiting_pods(kubeconfig: Path, standin: StandIn) -> None:
    runner = KubernetesRunner(settings(kubeconfig))
    await runner.open("closing-worker")
    await until(lambda: runner.pool.sizes().get(RUNTIME) == 2)
    waiting = waiting_pods(runner)
    assert set(waiting) == pods_of(standin, "closing-worker")
    await runner.close()
    assert pods_of(standin, "closing-worker") == set()
    assert not any(name in standin.config_maps for name in waiting)


async def test_closing_while_a_pod_starts_deletes_it_before_close_returns(kubeconfig: Path, standin: StandIn) -> None:
    # The pod's start is held, so close() cancels its launch; deletes slower than a cancel's patience
    # (tasks.stop cancels again every 50 ms) must still be waited for, not left running past the client's close.
    standin.call(lambda: setattr(standin, "hold_next_start_s", 2.0))
    standin.call(lambda: setattr(standin, "hold_deletes_s", 0.3))
    runner = KubernetesRunner(settings(kubeconfig, warm_pool_size=1))
    try:
        await runner.open("closing-early")
        await until(lambda: len(pods_of(standin, "closing-early")) == 1)
        await runner.close()
        assert pods_of(standin, "closing-early") == set()
    finally:
        standin.call(lambda: setattr(standin, "hold_deletes_s", 0.0))


async def test_the_reaper_keeps_a_live_workers_warm_pods_and_removes_a_dead_ones(
    worker: KubernetesRunner, successor: KubernetesRunner, standin: StandIn
) -> None:
    running = spec("import time\ntime.sleep(30)", LIMITS.model_copy(update={"wall_time_ms": 40_000}))
    sandbox = await worker.start(running)
    assert isinstance(sandbox, PodSandbox)
    # Refilled, and the new pod up: one still starting changes (its status) under the reaper's precondition.
    await until(lambda: worker.pool.sizes()[RUNTIME] == 2)
    waiting = pods_of(standin, worker.owner) - {sandbox.name}
    assert waiting == set(waiting_pods(worker))

    async def owner_alive(worker_id: str) -> bool:
        return worker_id == worker.owner

    assert await successor.reap(always, owner_alive) == []
    # Its worker dead, the pods waiting for a run go; the claimed one is its run's, judged by the run.
    assert sorted(await successor.reap(always, never)) == sorted(waiting)
    assert sandbox.name in standin.pods
    assert await successor.reap(never, never) == [sandbox.name]
    await sandbox.wait()


async def test_the_reaper_leaves_a_pod_claimed_since_it_listed_it(worker: KubernetesRunner, standin: StandIn) -> None:
    name = waiting_pods(worker)[0]
    metadata = standin.pods[name].manifest["metadata"]
    listed = V1Pod(metadata=V1ObjectMeta(name=name, uid=metadata["uid"], resource_version=metadata["resourceVersion"]))
    sandbox = await worker.start(spec("import time\nprint('claimed', flush=True)\ntime.sleep(10)"))
    assert isinstance(sandbox, PodSandbox)
    assert sandbox.name == name
    assert await worker.delete_unclaimed(listed) is False
    assert name in standin.pods
    await sandbox.kill()
    await sandbox.wait()


async def test_an_unclaimed_warm_pod_past_its_deadline_is_ended_and_reaped(kubeconfig: Path, standin: StandIn) -> None:
    quick = settings(kubeconfig, warm_pool_size=1, warm_pool_max_wait_s=1, startup_allowance_s=1)
    maximum = quick.limits.maximum.model_copy(update={"wall_time_ms": 1000})
    runner = KubernetesRunner(quick.model_copy(update={"limits": quick.limits.model_copy(update={"maximum": maximum})}))
    await runner.open("slow-worker")
    await until(lambda: runner.pool.sizes().get(RUNTIME) == 1)
    name = waiting_pods(runner)[0]
    assert standin.created_specs[name]["activeDeadlineSeconds"] == 3
    await until(lambda: standin.pods[name].manifest["status"].get("reason") == "DeadlineExceeded", timeout=10)
    # Its worker alive, yet past its deadline: the kubelet ended it, the reaper removes it.
    assert name in await runner.reap(always, always)
    # Too old to serve a run (the run's deadline would be above its own), so the pool passes it over.
    assert runner.pool.take(RUNTIME) is None
    await runner.close()


class WorkerDied(Exception):
    """Stands for the worker killed at that point."""


async def test_a_worker_dying_between_claim_and_header_leaves_a_run_that_starts_afresh(
    worker: KubernetesRunner, successor: KubernetesRunner, standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    claimed = standin.pods[waiting_pods(worker)[0]]
    run_spec = spec("import sys\nprint('ran once', sys.stdin.read())", stdin=b"input")

    async def die(self: PodSandbox, frame: bytes) -> bool:
        raise WorkerDied

    with monkeypatch.context() as patched:
        patched.setattr(PodSandbox, "deliver_header", die)
        with pytest.raises(WorkerDied):
            await worker.start(run_spec)
    assert claimed.manifest["metadata"]["labels"][LABEL_EXECUTION] == run_spec.name[7:]

    sandbox, out, result = await run(successor, replace(run_spec, resume=True))
    assert (out, result.exit_code) == ("ran once input\n", 0)
    # The claimed pod never started the script: deleted, and the run went to a pod of its own.
    assert sandbox.name == run_spec.name
    assert claimed.name in standin.deleted
    assert frames(claimed) == "R"


async def test_a_worker_dying_after_the_header_leaves_a_run_the_next_one_follows(
    worker: KubernetesRunner, successor: KubernetesRunner, standin: StandIn
) -> None:
    run_spec = spec("import time\nfor i in range(4):\n    print('line', i, flush=True)\n    time.sleep(0.3)\n")
    first = await worker.start(run_spec)
    assert isinstance(first, PodSandbox)
    assert await first_line(first.output()) == b"line 0\n"
    pod = standin.pods[first.name]
    # The worker dies: what lived in its process (the wall timer, the attach stream) goes, the pod stays.
    assert first.wall_timer is not None
    first.wall_timer.cancel()
    await first.stdin.detach()

    sandbox, out, result = await run(successor, replace(run_spec, resume=True))
    assert sandbox.name == first.name
    assert (out, result.exit_code) == ("".join(f"line {i}\n" for i in range(4)), 0)
    assert run_spec.name not in standin.pod_creates  # nothing started afresh
    assert re.fullmatch("RSO+X", frames(pod))
