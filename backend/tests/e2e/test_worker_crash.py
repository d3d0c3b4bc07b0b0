"""A worker that dies mid-run (SIGKILL) and one that is asked to stop (SIGTERM).

These tests kill workers, so they run their own API and workers on their own database and Redis key
prefix: the session's worker never sees their jobs, and its watchdog never sweeps their runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from podrun.kernels.session import kernel_sandbox_name
from podrun.runners.base import sandbox_name
from podrun.settings import Settings
from tests.client import EVENTS, GraphQLClient
from tests.databases import delete_keys, fresh_database
from tests.e2e.helpers import assert_consecutive, collect, final, flatten, lines, submit, wait_for_status
from tests.e2e.test_kernels import run, start, until_kernel
from tests.processes import PodrunDeployment, wait_ready

CRASH_PREFIX = "podrun-test-crash"


@pytest.fixture(scope="module")
def deployment(settings: Settings) -> Iterator[PodrunDeployment]:
    database_url = settings.database_url.removesuffix("_test") + "_crash_test"
    crash_settings = Settings(database_url=database_url, redis_prefix=CRASH_PREFIX)
    fresh_database(crash_settings)
    delete_keys(settings.redis_url, CRASH_PREFIX)
    running = PodrunDeployment("crash", {"PODRUN_DATABASE_URL": database_url, "PODRUN_REDIS_PREFIX": CRASH_PREFIX})
    # Two workers from the start: one to kill and one whose watchdog ends the orphaned run. Starting a
    # replacement only after the kill would add a whole process start-up to the test.
    running.worker()
    running.worker()
    try:
        wait_ready(running.base_url, running.api)
        yield running
    finally:
        running.stop()


def descendants(root: int) -> dict[int, str]:
    """pid -> command line of every live process below `root`."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    found: dict[int, str] = {}
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        found[pid] = _cmdline(pid)
        pending.extend(children.get(pid, []))
    return found


def runs_the_sandbox(pid: int, execution_id: str) -> bool:
    """Whether the process `pid` runs the execution's sandbox (its cgroup is named after the run; the
    worker's warm sandboxes, which wait for runs, are in cgroups of their own)."""
    name = sandbox_name(UUID(execution_id))
    return any(name in _cgroup(child) for child in descendants(pid))


def holds_the_kernel(pid: int, kernel_id: str) -> bool:
    """Whether the worker `pid` holds the kernel's sandbox (its cgroup is named after the kernel)."""
    name = kernel_sandbox_name(UUID(kernel_id))
    return any(name in _cgroup(child) for child in descendants(pid))


def _cgroup(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cgroup").read_text()
    except OSError:
        return ""


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie."""
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cgroups_named(name: str) -> list[Path]:
    """Cgroup directories of the sandbox `name`, wherever the runner put them."""
    return [path for path in Path("/sys/fs/cgroup").glob(f"**/{name}*") if path.is_dir()]


async def test_a_run_whose_worker_is_killed_ends_as_error_and_leaves_no_sandbox(deployment: PodrunDeployment) -> None:
    alice = await GraphQLClient(deployment.base_url).register()
    script = "import time\nprint('before the crash', flush=True)\ntime.sleep(60)\nprint('never')\n"
    execution_id = await submit(alice, script, limits={"wallTimeMs": 60000})
    events: list[dict[str, Any]] = []
    sandbox: dict[int, str] = {}

    async def follow() -> None:
        async for data in alice.subscribe(EVENTS, {"id": execution_id}):
            for event in flatten(data["executionEvents"]):
                events.append(event)
                if event["kind"] == "line" and event["text"] == "before the crash":
                    [running] = [w for w in deployment.live_workers() if runs_the_sandbox(w.process.pid, execution_id)]
                    sandbox.update(descendants(running.process.pid))
                    running.kill()
                    assert deployment.live_workers(), "the other worker must be left to end the run"

    # Heartbeat TTL 4 s plus a 1 s sweep interval (tests/conftest.py): well within 20 s.
    await asyncio.wait_for(follow(), timeout=20)

    assert [pid for pid in sandbox if alive(pid)] == []
    assert cgroups_named(sandbox_name(UUID(execution_id))) == []
    assert lines(events) == ["before the crash"]
    assert [e["status"] for e in events if e["kind"] == "status"] == ["STARTING", "RUNNING", "ERROR"]
    assert_consecutive(events)
    ended = final(events)
    assert ended["error"] == "the worker running this execution stopped unexpectedly"
    assert (ended["exitCode"], ended["limitExceeded"], ended["stdout"]) == (None, None, "before the crash\n")
    # The archived log says the same to a late subscriber.
    assert [(e["seq"], e["kind"]) for e in await collect(alice, execution_id)] == [
        (e["seq"], e["kind"]) for e in events
    ]


async def test_a_worker_asked_to_stop_finishes_its_running_job(deployment: PodrunDeployment) -> None:
    [worker] = deployment.live_workers() or [deployment.worker()]
    alice = await GraphQLClient(deployment.base_url).register()
    execution_id = await submit(alice, "import time\ntime.sleep(1)\nprint('finished in time')\n")
    await wait_for_status(alice, execution_id, "RUNNING")
    stopping = asyncio.create_task(asyncio.to_thread(worker.stop))
    events = await asyncio.wait_for(collect(alice, execution_id), timeout=15)
    await stopping
    assert lines(events) == ["finished in time"]
    assert [e["status"] for e in events if e["kind"] == "status"] == ["STARTING", "RUNNING", "SUCCEEDED"]
    assert final(events)["exitCode"] == 0
    assert_consecutive(events)


async def test_a_kernel_whose_worker_is_killed_ends_dead(deployment: PodrunDeployment) -> None:
    while len(deployment.live_workers()) < 2:
        deployment.worker()
    alice = await GraphQLClient(deployment.base_url).register()
    kernel = await start(alice)
    await until_kernel(alice, kernel["id"], "IDLE", timeout=60)
    assert (await run(alice, kernel["id"], "x = 41\nx"))[0] == ["41"]
    [holder] = [w for w in deployment.live_workers() if holds_the_kernel(w.process.pid, kernel["id"])]
    holder.kill()
    # Heartbeat TTL 4 s plus a 1 s sweep interval (tests/conftest.py).
    dead = await until_kernel(alice, kernel["id"], "DEAD", timeout=20)
    assert dead["error"] == "the worker holding the kernel stopped"


async def test_a_worker_asked_to_stop_ends_its_kernels_at_once(deployment: PodrunDeployment) -> None:
    while len(deployment.live_workers()) < 1:
        deployment.worker()
    alice = await GraphQLClient(deployment.base_url).register()
    kernel = await start(alice)
    await until_kernel(alice, kernel["id"], "IDLE", timeout=60)
    [holder] = [w for w in deployment.live_workers() if holds_the_kernel(w.process.pid, kernel["id"])]
    began = asyncio.get_running_loop().time()
    await asyncio.to_thread(holder.stop)
    # Within the worker's shutdown grace (5 s in the tests), which a kernel never ending would use up whole.
    assert asyncio.get_running_loop().time() - began < 4
    stopped = await until_kernel(alice, kernel["id"], "STOPPED")
    assert stopped["error"] == "the worker holding the kernel shut down"
