"""Kernels through the API: cells share state, stream live, are interrupted without losing it; limits, errors, ends.

Those marked `pods` run on the local Kubernetes too (one pod per kernel).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from podrun.settings import Settings
from tests.client import GraphQLClient, GraphQLFailure
from tests.e2e.helpers import collect, execution, final, lines, wait_for_status

KERNEL_FIELDS = (
    "id status idleTimeoutS error stopsAt queuedCells lastUsedAt limits { wallTimeMs memoryMiB } runtime { id }"
)
START = f"mutation($input: StartKernelInput!) {{ startKernel(input: $input) {{ {KERNEL_FIELDS} }} }}"
KERNEL = f"query($id: ID!) {{ kernel(id: $id) {{ {KERNEL_FIELDS} }} }}"
RUN = "mutation($k: ID!, $code: String!) { runInKernel(kernelId: $k, code: $code) { id status kernel { id } } }"
STOP = f"mutation($id: ID!) {{ stopKernel(id: $id) {{ {KERNEL_FIELDS} }} }}"
RESTART = f"mutation($id: ID!) {{ restartKernel(id: $id) {{ {KERNEL_FIELDS} }} }}"
CANCEL = "mutation($id: ID!) { cancelExecution(id: $id) { id status } }"
CELLS = "query($id: ID!) { kernel(id: $id) { cells(first: 10) { edges { node { id script status stdout } } } } }"
KERNELS = "query { kernels(first: 5) { edges { node { id status } } pageInfo { hasNextPage } } }"


async def start(client: GraphQLClient, **fields: Any) -> dict[str, Any]:
    data = await client.execute(START, {"input": fields})
    return data["startKernel"]  # type: ignore[no-any-return]


async def kernel(client: GraphQLClient, kernel_id: str) -> dict[str, Any]:
    return (await client.execute(KERNEL, {"id": kernel_id}))["kernel"]  # type: ignore[no-any-return]


async def until_kernel(client: GraphQLClient, kernel_id: str, *statuses: str, timeout: float = 20) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while (current := await kernel(client, kernel_id))["status"] not in statuses:
        assert asyncio.get_running_loop().time() < deadline, f"kernel still {current['status']}, wanted {statuses}"
        await asyncio.sleep(0.05)
    return current


async def send(client: GraphQLClient, kernel_id: str, code: str) -> str:
    return str((await client.execute(RUN, {"k": kernel_id, "code": code}))["runInKernel"]["id"])


async def run(client: GraphQLClient, kernel_id: str, code: str) -> tuple[list[str], list[str], dict[str, Any]]:
    """Send a cell and watch it to its end: its stdout and stderr lines, and the cell as it ended."""
    events = await collect(client, await send(client, kernel_id, code))
    return lines(events), lines(events, "STDERR"), final(events)


@pytest.fixture
async def alices_kernel(alice: GraphQLClient) -> Any:
    started = await start(alice)
    yield started["id"]
    await alice.execute(STOP, {"id": started["id"]})


@pytest.mark.pods
async def test_state_lives_between_cells_and_a_cell_is_an_execution(alice: GraphQLClient, alices_kernel: str) -> None:
    await until_kernel(alice, alices_kernel, "IDLE")
    assert (await run(alice, alices_kernel, "x = 41"))[2]["status"] == "SUCCEEDED"
    stdout, stderr, ended = await run(alice, alices_kernel, "print(x + 1)\nx")
    assert (stdout, stderr, ended["status"], ended["exitCode"]) == (["42", "41"], [], "SUCCEEDED", 0)
    cells = (await alice.execute(CELLS, {"id": alices_kernel}))["kernel"]["cells"]["edges"]
    assert [cell["node"]["script"] for cell in cells] == ["x = 41", "print(x + 1)\nx"]
    assert cells[1]["node"]["stdout"] == "42\n41\n"
    current = await kernel(alice, alices_kernel)
    assert current["status"] == "IDLE"
    assert current["stopsAt"] is not None
    assert current["lastUsedAt"] is not None
    listed = (await alice.execute(KERNELS))["kernels"]["edges"]
    assert listed[0]["node"]["id"] == alices_kernel


@pytest.mark.pods
async def test_an_exception_fails_the_cell_and_keeps_the_kernel(alice: GraphQLClient, alices_kernel: str) -> None:
    await run(alice, alices_kernel, "y = 'kept'")
    _, stderr, ended = await run(alice, alices_kernel, "1 / 0")
    assert (ended["status"], ended["exitCode"]) == ("FAILED", 1)
    assert stderr[-1] == "ZeroDivisionError: division by zero"
    assert not any("harness" in line for line in stderr)
    assert (await run(alice, alices_kernel, "print(y)"))[0] == ["kept"]


@pytest.mark.pods
async def test_an_interrupt_ends_the_cell_cancelled_and_keeps_the_state(
    alice: GraphQLClient, alices_kernel: str
) -> None:
    await run(alice, alices_kernel, "x = 41")
    busy = await send(alice, alices_kernel, "while True: pass")
    waiting = await send(alice, alices_kernel, "print(x)")
    await wait_for_status(alice, busy, "RUNNING")
    current = await kernel(alice, alices_kernel)
    assert (current["status"], current["queuedCells"], (await execution(alice, waiting))["status"]) == (
        "BUSY",
        1,
        "QUEUED",
    )
    cancelled = (await alice.execute(CANCEL, {"id": busy}))["cancelExecution"]
    assert cancelled["status"] == "CANCELLED"
    events = await collect(alice, waiting)
    assert (lines(events), final(events)["status"]) == (["41"], "SUCCEEDED")
    assert (await until_kernel(alice, alices_kernel, "IDLE"))["status"] == "IDLE"


@pytest.mark.pods
async def test_a_second_interrupt_is_a_conflict(alice: GraphQLClient, alices_kernel: str) -> None:
    code = "import signal, time\nsignal.signal(signal.SIGINT, lambda *a: print('not now', flush=True))\ntime.sleep(30)"
    cell = await send(alice, alices_kernel, code)
    await wait_for_status(alice, cell, "RUNNING")
    first = asyncio.create_task(alice.execute(CANCEL, {"id": cell}))
    await asyncio.sleep(0.5)
    with pytest.raises(GraphQLFailure) as failure:
        await alice.execute(CANCEL, {"id": cell})
    assert failure.value.codes == ["CONFLICT"]
    await first
    # It ignored the interrupt: the kernel is killed with it after the grace period, and says why.
    dead = await until_kernel(alice, alices_kernel, "DEAD")
    assert dead["error"] == "the cell did not stop when interrupted, so the kernel was stopped with it"
    with pytest.raises(GraphQLFailure) as failure:
        await send(alice, alices_kernel, "1")
    assert failure.value.codes == ["CONFLICT"]


@pytest.mark.pods
async def test_a_cell_past_its_wall_time_times_out_and_the_kernel_goes_on(alice: GraphQLClient) -> None:
    started = await start(alice, limits={"wallTimeMs": 1000})
    try:
        _, stderr, ended = await run(alice, started["id"], "import time\ntime.sleep(5)")
        assert (ended["status"], ended["limitExceeded"]) == ("TIMED_OUT", "WALL_TIME")
        assert stderr[-1] == "KeyboardInterrupt"
        assert (await run(alice, started["id"], "print('on')"))[0] == ["on"]
    finally:
        await alice.execute(STOP, {"id": started["id"]})


async def test_the_idle_timeout_stops_the_kernel(alice: GraphQLClient) -> None:
    started = await start(alice, idleTimeoutS=1)
    assert started["idleTimeoutS"] == 1
    stopped = await until_kernel(alice, started["id"], "STOPPED")
    assert stopped["error"] == "stopped after 1 s without a cell"
    with pytest.raises(GraphQLFailure) as failure:
        await send(alice, started["id"], "print(1)")
    assert failure.value.codes == ["CONFLICT"]


@pytest.mark.pods
async def test_restart_clears_the_state(alice: GraphQLClient, alices_kernel: str) -> None:
    await run(alice, alices_kernel, "x = 1\nopen('/tmp/left', 'w').write('x')\nNone")
    restarted = (await alice.execute(RESTART, {"id": alices_kernel}))["restartKernel"]
    assert restarted["id"] == alices_kernel
    await until_kernel(alice, alices_kernel, "IDLE")
    _, stderr, ended = await run(alice, alices_kernel, "import os\nprint(os.path.exists('/tmp/left'))\nx")
    assert (ended["status"], stderr[-1]) == ("FAILED", "NameError: name 'x' is not defined")


@pytest.mark.pods
async def test_nothing_of_a_stopped_kernel_reaches_the_next(alice: GraphQLClient) -> None:
    first = await start(alice)
    await run(
        alice,
        first["id"],
        "import subprocess\nsecret = 's3'\nopen('/tmp/secret', 'w').write(secret)\n"
        "p = subprocess.Popen(['sleep', '300'])\nNone",
    )
    await alice.execute(STOP, {"id": first["id"]})
    second = await start(alice)
    try:
        code = "import os\nprint('secret' in globals(), os.path.exists('/tmp/secret'), "
        code += (
            "[p for p in os.listdir('/proc') if p.isdigit() and b'sleep' in open(f'/proc/{p}/cmdline', 'rb').read()])"
        )
        assert (await run(alice, second["id"], code))[0] == ["False False []"]
    finally:
        await alice.execute(STOP, {"id": second["id"]})


async def test_bad_input_is_refused_with_a_code(alice: GraphQLClient, bob: GraphQLClient, alices_kernel: str) -> None:
    cases = [
        (bob.execute(KERNEL, {"id": alices_kernel}), "NOT_FOUND"),
        (bob.execute(RUN, {"k": alices_kernel, "code": "1"}), "NOT_FOUND"),
        (bob.execute(STOP, {"id": alices_kernel}), "NOT_FOUND"),
        (alice.execute(START, {"input": {"idleTimeoutS": 10**6}}), "BAD_USER_INPUT"),
        (alice.execute(START, {"input": {"idleTimeoutS": 0}}), "BAD_USER_INPUT"),
        (alice.execute(RUN, {"k": alices_kernel, "code": "#" * (1024 * 1024)}), "BAD_USER_INPUT"),
        (alice.execute(KERNEL, {"id": "not-an-id"}), "NOT_FOUND"),
    ]
    for call, code in cases:
        with pytest.raises(GraphQLFailure) as failure:
            await call
        assert failure.value.codes == [code]
    stopped = (await alice.execute(STOP, {"id": alices_kernel}))["stopKernel"]
    assert (stopped["status"], stopped["error"]) == ("STOPPED", "stopped by its owner")
    with pytest.raises(GraphQLFailure) as failure:
        await send(alice, alices_kernel, "1")
    assert failure.value.codes == ["CONFLICT"]
    assert (await alice.execute(STOP, {"id": alices_kernel}))["stopKernel"]["status"] == "STOPPED"


async def test_kernels_count_against_the_runs_in_progress(alice: GraphQLClient, settings: Settings) -> None:
    started = [(await start(alice))["id"] for _ in range(settings.quotas.active_executions_per_user)]
    try:
        with pytest.raises(GraphQLFailure) as failure:
            await start(alice)
        assert failure.value.codes == ["RATE_LIMITED"]
    finally:
        for kernel_id in started:
            await alice.execute(STOP, {"id": kernel_id})
    freed = await start(alice)  # a stopped kernel frees its slot
    await alice.execute(STOP, {"id": freed["id"]})


async def test_a_kernel_out_of_memory_ends_dead_and_says_why(alice: GraphQLClient) -> None:
    """Under a cgroup the kernel is killed for memory (DEAD, saying so); under rlimits alone the cell gets a
    MemoryError and the kernel goes on. Either way the cell names the limit."""
    isolation = (await alice.execute("{ runtimes { isolation } }"))["runtimes"][0]["isolation"]
    started = await start(alice, limits={"memoryMiB": 64})
    _, _, ended = await run(alice, started["id"], "x = bytearray(512 * 1024 * 1024)")
    assert (ended["status"], ended["limitExceeded"]) == ("FAILED", "MEMORY")
    if "cgroup" not in isolation:
        assert (await run(alice, started["id"], "print('alive')"))[0] == ["alive"]
        await alice.execute(STOP, {"id": started["id"]})
        return
    dead = await until_kernel(alice, started["id"], "DEAD")
    assert dead["error"] == "the kernel ran out of memory"
    with pytest.raises(GraphQLFailure) as failure:
        await send(alice, started["id"], "print(1)")
    assert failure.value.codes == ["CONFLICT"]


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("import os\nos._exit(3)", "the kernel's process exited with code 3"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "the kernel's process was killed by signal 9"),
    ],
    ids=["exit", "killed"],
)
async def test_a_kernel_whose_process_ends_is_dead_and_says_how(alice: GraphQLClient, code: str, why: str) -> None:
    started = await start(alice)
    ended = (await run(alice, started["id"], code))[2]
    assert ended["status"] == "FAILED"
    dead = await until_kernel(alice, started["id"], "DEAD")
    assert dead["error"] == why
