"""Kernels on the Kubernetes runner, through the API: one pod per kernel, its state kept across cells,
interrupts and the death of the worker holding it; stopped after its idle timeout, its pod deleted."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.client import EVENTS, GraphQLClient
from tests.e2e.helpers import collect, execution, final, flatten, lines, wait_for_status
from tests.e2e.test_kernels import CANCEL, RESTART, STOP, run, send, start, until_kernel
from tests.integration.kubernetes.conftest import Cluster

# A cold pod on the real cluster: created, scheduled, its container started.
STARTED_S = 60


def kernel_pods(cluster: Cluster, kernel_id: str) -> list[str]:
    return cluster.pods.pods_labelled("podrun.dev/kernel-id", kernel_id.replace("-", ""))


def pod_of(cluster: Cluster, kernel_id: str) -> str:
    [name] = kernel_pods(cluster, kernel_id)
    assert name.startswith("podrun-kernel-" + kernel_id.replace("-", "") + "-")
    return name


async def until_gone(cluster: Cluster, kernel_id: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while names := kernel_pods(cluster, kernel_id):
        assert asyncio.get_running_loop().time() < deadline, f"{names} still exist"
        await asyncio.sleep(0.2)


async def ready_kernel(user: GraphQLClient, **fields: Any) -> str:
    kernel_id = str((await start(user, **fields))["id"])
    await until_kernel(user, kernel_id, "IDLE", timeout=STARTED_S)
    return kernel_id


async def test_cells_share_state_in_one_pod_and_stream_live(cluster: Cluster, user: GraphQLClient) -> None:
    kernel_id = await ready_kernel(user)
    name = pod_of(cluster, kernel_id)
    assert (await run(user, kernel_id, "x = 41"))[2]["status"] == "SUCCEEDED"
    stdout, stderr, ended = await run(user, kernel_id, "print(x + 1)")
    assert (stdout, stderr, ended["status"], ended["exitCode"]) == (["42"], [], "SUCCEEDED", 0)

    cell = await send(user, kernel_id, "import time\nprint('first', flush=True)\ntime.sleep(3)\nprint('second')")
    seen: list[str] = []
    async for data in user.subscribe(EVENTS, {"id": cell, "after": 0}):
        for event in flatten(data["executionEvents"]):
            if event.get("text") == "first":
                # Live: the first line is there while the cell still runs.
                seen.append((await execution(user, cell))["status"])
    assert seen == ["RUNNING"]
    assert (await execution(user, cell))["stdout"] == "first\nsecond\n"
    assert cluster.pods.creates(name) == 1
    await user.execute(STOP, {"id": kernel_id})
    await until_kernel(user, kernel_id, "STOPPED")
    await until_gone(cluster, kernel_id)


async def test_an_interrupted_cell_leaves_the_state(cluster: Cluster, user: GraphQLClient) -> None:
    kernel_id = await ready_kernel(user)
    await run(user, kernel_id, "x = 41")
    busy = await send(user, kernel_id, "while True: pass")
    await wait_for_status(user, busy, "RUNNING")
    await asyncio.sleep(0.5)
    assert (await user.execute(CANCEL, {"id": busy}))["cancelExecution"]["status"] == "CANCELLED"
    stdout, _, ended = await run(user, kernel_id, "print(x)")
    assert (stdout, ended["status"]) == (["41"], "SUCCEEDED")
    assert (await until_kernel(user, kernel_id, "IDLE"))["status"] == "IDLE"
    await user.execute(STOP, {"id": kernel_id})
    await until_gone(cluster, kernel_id)


async def test_a_restart_is_a_new_pod_of_another_name(cluster: Cluster, user: GraphQLClient) -> None:
    kernel_id = await ready_kernel(user)
    first = pod_of(cluster, kernel_id)
    await run(user, kernel_id, "x = 41")
    await user.execute(RESTART, {"id": kernel_id})
    await until_kernel(user, kernel_id, "IDLE", timeout=STARTED_S)
    # The old pod's name is not reused: the kubelet may still be tearing it down.
    second = pod_of(cluster, kernel_id)
    assert second != first
    _, stderr, ended = await run(user, kernel_id, "print('fresh')\nx")
    assert (ended["status"], ended["stdout"], stderr[-1]) == ("FAILED", "fresh\n", "NameError: name 'x' is not defined")
    await user.execute(STOP, {"id": kernel_id})
    await until_gone(cluster, kernel_id)


async def test_the_idle_timeout_stops_the_kernel_and_deletes_its_pod(cluster: Cluster, user: GraphQLClient) -> None:
    kernel_id = await ready_kernel(user, idleTimeoutS=2)
    stopped = await until_kernel(user, kernel_id, "STOPPED", timeout=20)
    assert stopped["error"] == "stopped after 2 s without a cell"
    await until_gone(cluster, kernel_id)


@pytest.mark.parametrize("end", ["kill", "stop"])
async def test_a_kernel_outlives_its_worker(cluster: Cluster, user: GraphQLClient, end: str) -> None:
    kernel_id = await ready_kernel(user)
    name = pod_of(cluster, kernel_id)
    await run(user, kernel_id, "x = 41")
    # Between two cells: SIGKILL, or SIGTERM (a graceful shutdown, as a rolling update does).
    if end == "kill":
        cluster.holder().kill()
    else:
        cluster.holder().stop()
    assert cluster.pods.pod_exists(name)
    cluster.worker()
    # Sent while nobody holds the kernel: the worker that takes it over runs it, in the same process.
    events = await collect(user, await send(user, kernel_id, "print(x)"))
    assert (lines(events), final(events)["status"]) == (["41"], "SUCCEEDED")
    assert (await until_kernel(user, kernel_id, "IDLE"))["status"] == "IDLE"
    assert (kernel_pods(cluster, kernel_id), cluster.pods.creates(name)) == ([name], 1)
    assert (await run(user, kernel_id, "x += 1\nprint(x)"))[0] == ["42"]
    await user.execute(STOP, {"id": kernel_id})
    await until_gone(cluster, kernel_id)


async def test_a_cell_running_when_its_worker_dies_ends_and_the_kernel_goes_on(
    cluster: Cluster, user: GraphQLClient
) -> None:
    kernel_id = await ready_kernel(user)
    await run(user, kernel_id, "x = 41")
    busy = await send(user, kernel_id, "import time\nprint('busy', flush=True)\nwhile True: time.sleep(0.1)")
    async for data in user.subscribe(EVENTS, {"id": busy, "after": 0}):
        if any(event.get("text") == "busy" for event in flatten(data["executionEvents"])):
            break
    cluster.holder().kill()
    cluster.worker()
    events = await collect(user, busy)
    assert (lines(events), final(events)["status"]) == (["busy"], "ERROR")
    # The new worker interrupted it and skipped its last frames: the next cell's output is its own.
    stdout, stderr, ended = await run(user, kernel_id, "print(x)")
    assert (stdout, stderr, ended["status"]) == (["41"], [], "SUCCEEDED")
    await user.execute(STOP, {"id": kernel_id})
    await until_gone(cluster, kernel_id)
