"""Limits end runs with the right status and reason; bad limits are refused; defaults come from the runtime."""

from __future__ import annotations

from typing import Any

import pytest

from tests.client import SUBMIT, GraphQLClient, GraphQLFailure
from tests.e2e.helpers import collect, final, lines, submit

RUNTIMES = """
query {
  runtimes {
    id default
    maxLimits { wallTimeMs cpuTimeMs memoryMiB outputBytes processes }
    defaultLimits { wallTimeMs cpuTimeMs memoryMiB outputBytes processes }
  }
}
"""
LIMIT_FIELDS = ["wallTimeMs", "cpuTimeMs", "memoryMiB", "outputBytes", "processes"]

FORK_BOMB = """
import os, time
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.01)
"""
FORK_UNTIL_REFUSED = """
import os, time
forked = 0
while True:
    try:
        pid = os.fork()
    except OSError as error:
        print(type(error).__name__, forked < 16)
        raise SystemExit(1)
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    forked += 1
"""


# As snekbox's tests expect: shared memory as large as /dev/shm (40 MiB), and a multiprocessing.Array past the
# 16 MiB file-size rlimit there once was.
SHARED_MEMORY = """
import ctypes, multiprocessing
from multiprocessing import shared_memory
block = shared_memory.SharedMemory(create=True, size=40 * 2**20)
block.buf[-1] = 7
print(block.buf[-1], flush=True)
block.close()
block.unlink()
array = multiprocessing.Array(ctypes.c_char, 32 * 2**20)
array[-1] = b"x"
print(array[-1].decode())
"""
HARNESS_OUT_OF_REACH = """
import os, resource, sys
for attempt in (
    lambda: resource.prlimit(1, resource.RLIMIT_CPU, (1, 1)),
    lambda: os.setpriority(os.PRIO_PROCESS, 1, 19),
    lambda: os.setpriority(os.PRIO_PROCESS, 0, 5),
):
    try:
        attempt()
        print("allowed")
    except OSError as error:
        print(type(error).__name__)
sys.exit(3)
"""


async def default_runtime(client: GraphQLClient) -> dict[str, Any]:
    runtimes = (await client.execute(RUNTIMES))["runtimes"]
    return next(runtime for runtime in runtimes if runtime["default"])


async def run(client: GraphQLClient, script: str, **limits: int) -> dict[str, Any]:
    """Submit with these limits and wait for the end; the terminal execution plus its stdout lines."""
    events = await collect(client, await submit(client, script, limits=limits))
    return {**final(events), "lines": lines(events)}


@pytest.mark.pods
@pytest.mark.parametrize(
    ("script", "limits", "status", "limit"),
    [
        pytest.param("import time\ntime.sleep(3600)\n", {"wallTimeMs": 1000}, "TIMED_OUT", "WALL_TIME", id="wall"),
        pytest.param(
            "while True:\n    pass\n", {"cpuTimeMs": 500, "wallTimeMs": 10000}, "TIMED_OUT", "CPU_TIME", id="cpu"
        ),
        pytest.param(
            "data = b'x' * (600 * 1024 * 1024)\nprint(len(data))\n", {"memoryMiB": 128}, "FAILED", "MEMORY", id="memory"
        ),
    ],
)
async def test_a_limit_ends_the_run(
    alice: GraphQLClient, script: str, limits: dict[str, int], status: str, limit: str
) -> None:
    ended = await run(alice, script, **limits)
    assert (ended["status"], ended["limitExceeded"]) == (status, limit)
    assert ended["lines"] == []
    assert ended["outputTruncated"] is False


@pytest.mark.pods
async def test_shared_memory_as_large_as_dev_shm_works(alice: GraphQLClient) -> None:
    result = await run(alice, SHARED_MEMORY)
    assert (result["status"], result["lines"]) == ("SUCCEEDED", ["7", "x"])


@pytest.mark.pods
async def test_the_harness_limits_and_priority_are_out_of_reach_and_the_exit_status_is_kept(
    alice: GraphQLClient,
) -> None:
    # On Kubernetes through the Localhost profile of the local overlay (the same filter as the local sandbox's).
    result = await run(alice, HARNESS_OUT_OF_REACH)
    assert (result["status"], result["exitCode"], result["error"]) == ("FAILED", 3, None)
    assert result["lines"] == ["PermissionError", "PermissionError", "allowed"]


@pytest.mark.pods
async def test_a_fork_bomb_is_contained_and_the_machine_still_runs_scripts(alice: GraphQLClient) -> None:
    ended = await run(alice, FORK_BOMB, processes=16, wallTimeMs=2000)
    # Forks beyond the limit fail, so the bomb spins until the wall-time limit kills all of it.
    assert (ended["status"], ended["limitExceeded"], ended["signal"]) == ("TIMED_OUT", "WALL_TIME", 9)
    after = await run(alice, "print('still fine')\n")
    assert (after["status"], after["lines"]) == ("SUCCEEDED", ["still fine"])


@pytest.mark.pods
async def test_forking_past_the_process_limit_fails_with_processes(alice: GraphQLClient, runner: str) -> None:
    ended = await run(alice, FORK_UNTIL_REFUSED, processes=16, wallTimeMs=5000)
    assert ended["lines"] == ["BlockingIOError True"]
    # In a pod the limit is the harness's RLIMIT_NPROC: forks are refused, but nothing outside the script sees
    # why (the local runner reads its cgroup's pids counter), so the run is not marked PROCESSES.
    limit = "PROCESSES" if runner == "local" else None
    assert (ended["status"], ended["exitCode"], ended["limitExceeded"]) == ("FAILED", 1, limit)


@pytest.mark.pods
async def test_an_output_flood_is_cut_at_the_limit(alice: GraphQLClient) -> None:
    ended = await run(alice, "while True:\n    print('x' * 100)\n", outputBytes=10000)
    assert (ended["status"], ended["limitExceeded"], ended["outputTruncated"]) == ("FAILED", "OUTPUT", True)
    assert 0 < len(ended["stdout"].encode()) <= 10000
    assert sum(len(text.encode()) for text in ended["lines"]) <= 10000
    assert set(ended["lines"]) <= {"x" * 100, *("x" * n for n in range(1, 100))}


@pytest.mark.pods
@pytest.mark.parametrize(
    ("script", "exit_code", "signal"),
    [
        pytest.param("import sys\nprint('bye')\nsys.exit(3)\n", 3, None, id="exit-3"),
        pytest.param("import os\nprint('bye')\nos.kill(os.getpid(), 9)\n", None, 9, id="sigkill"),
    ],
)
async def test_a_nonzero_exit_or_a_signal_fails_the_run(
    alice: GraphQLClient, script: str, exit_code: int | None, signal: int | None
) -> None:
    ended = await run(alice, script)
    assert (ended["status"], ended["exitCode"], ended["signal"], ended["limitExceeded"]) == (
        "FAILED",
        exit_code,
        signal,
        None,
    )
    assert ended["lines"] == ["bye"]


@pytest.mark.parametrize("field", LIMIT_FIELDS)
async def test_limits_above_the_runtime_maximum_are_refused(alice: GraphQLClient, field: str) -> None:
    maximum = (await default_runtime(alice))["maxLimits"][field]
    with pytest.raises(GraphQLFailure) as failure:
        await alice.execute(SUBMIT, {"input": {"script": "print(1)", "limits": {field: maximum + 1}}})
    assert failure.value.code == "BAD_USER_INPUT"
    assert f"limits.{field}" in failure.value.message


@pytest.mark.parametrize("value", [0, -1])
async def test_limits_below_one_are_refused(alice: GraphQLClient, value: int) -> None:
    with pytest.raises(GraphQLFailure) as failure:
        await alice.execute(SUBMIT, {"input": {"script": "print(1)", "limits": {"wallTimeMs": value}}})
    assert failure.value.code == "BAD_USER_INPUT"
    assert "limits.wallTimeMs" in failure.value.message


async def test_the_maximum_itself_is_accepted_and_omitted_limits_take_the_defaults(alice: GraphQLClient) -> None:
    runtime = await default_runtime(alice)
    for requested in ({}, {"wallTimeMs": runtime["maxLimits"]["wallTimeMs"]}, {"processes": 7}):
        data = await alice.execute(SUBMIT, {"input": {"script": "print(1)", "limits": requested}})
        submitted = data["submitExecution"]
        assert submitted["runtime"]["id"] == runtime["id"]
        assert submitted["limits"] == {**runtime["defaultLimits"], **requested}
    without_limits = await alice.execute(SUBMIT, {"input": {"script": "print(1)"}})
    assert without_limits["submitExecution"]["limits"] == runtime["defaultLimits"]
