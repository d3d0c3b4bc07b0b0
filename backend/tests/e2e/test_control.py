"""Controlling a run: stdin given up front, interactive input, and cancelling in every state."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis

from podrun.runners import harness
from podrun.settings import Settings
from tests.client import EVENTS, GraphQLClient, GraphQLFailure
from tests.e2e.helpers import assert_consecutive, collect, execution, final, flatten, lines, submit, wait_for_status

SEND_INPUT = "mutation($id: ID!, $data: String!, $eof: Boolean) { sendInput(id: $id, data: $data, eof: $eof) }"
CANCEL = "mutation($id: ID!) { cancelExecution(id: $id) { id status } }"
SLEEPER = "import time\nprint('sleeping', flush=True)\ntime.sleep(30)\n"

READ_UNTIL_EOF = """
print(input())
print(input())
try:
    input()
except EOFError:
    print('EOF')
"""

INTERACTIVE = """
import sys
print('name?')
name = input()
print('hello ' + name)
print('more?')
print('EOF' if sys.stdin.read() == '' else 'not EOF')
"""


async def cancel(client: GraphQLClient, execution_id: str) -> dict[str, Any]:
    return (await client.execute(CANCEL, {"id": execution_id}))["cancelExecution"]  # type: ignore[no-any-return]


async def send_input(client: GraphQLClient, execution_id: str, data: str, eof: bool = False) -> bool:
    result = await client.execute(SEND_INPUT, {"id": execution_id, "data": data, "eof": eof})
    return bool(result["sendInput"])


@pytest.mark.pods
async def test_stdin_given_at_submission_is_read_then_eof(alice: GraphQLClient) -> None:
    events = await collect(alice, await submit(alice, READ_UNTIL_EOF, stdin="a\nb\n"))
    assert lines(events) == ["a", "b", "EOF"]
    assert final(events)["status"] == "SUCCEEDED"
    assert_consecutive(events)


@pytest.mark.pods
async def test_interactive_input_reaches_the_script_and_eof_closes_it(alice: GraphQLClient) -> None:
    execution_id = await submit(alice, INTERACTIVE)
    events: list[dict[str, Any]] = []
    async for data in alice.subscribe(EVENTS, {"id": execution_id}):
        for event in flatten(data["executionEvents"]):
            events.append(event)
            if event["kind"] == "line" and event["text"] == "name?":
                assert await send_input(alice, execution_id, "world\n") is True
            if event["kind"] == "line" and event["text"] == "more?":
                assert await send_input(alice, execution_id, "", eof=True) is True
    assert lines(events) == ["name?", "hello world", "more?", "EOF"]
    assert final(events)["status"] == "SUCCEEDED"
    assert_consecutive(events)


async def test_send_input_to_a_run_given_stdin_is_a_conflict(alice: GraphQLClient) -> None:
    execution_id = await submit(alice, SLEEPER, stdin="", limits={"wallTimeMs": 5000})
    try:
        with pytest.raises(GraphQLFailure) as failure:
            await send_input(alice, execution_id, "late\n")
        assert failure.value.code == "CONFLICT"
    finally:
        await cancel(alice, execution_id)


@pytest.mark.parametrize("eof", [False, True])
async def test_send_input_to_a_finished_run_is_a_conflict(alice: GraphQLClient, eof: bool) -> None:
    execution_id = await submit(alice, "print('done')\n")
    assert final(await collect(alice, execution_id))["status"] == "SUCCEEDED"
    with pytest.raises(GraphQLFailure) as failure:
        await send_input(alice, execution_id, "late\n", eof=eof)
    assert failure.value.code == "CONFLICT"


@pytest.mark.pods
async def test_cancel_while_running_ends_the_run_within_a_second(alice: GraphQLClient) -> None:
    execution_id = await submit(alice, SLEEPER)
    events: list[dict[str, Any]] = []
    cancelled_at = 0.0
    async for data in alice.subscribe(EVENTS, {"id": execution_id}):
        for event in flatten(data["executionEvents"]):
            events.append(event)
            if event["kind"] == "line" and event["text"] == "sleeping":
                cancelled_at = time.monotonic()
                assert (await cancel(alice, execution_id))["id"] == execution_id
    ended_after = time.monotonic() - cancelled_at
    assert [e["status"] for e in events if e["kind"] == "status"] == ["STARTING", "RUNNING", "CANCELLED"]
    assert lines(events) == ["sleeping"]
    assert (final(events)["limitExceeded"], final(events)["error"]) == (None, None)
    assert_consecutive(events)
    assert ended_after < 1.5  # the contract: "within a second if running"


async def test_cancel_while_queued_ends_the_run_before_it_starts(alice: GraphQLClient) -> None:
    # The worker runs 4 jobs at once: keep it busy so the fifth run waits in the queue (the sleepers' time is
    # ample for a starved machine; the test cancels them).
    sleepers = [await submit(alice, SLEEPER, limits={"wallTimeMs": 60_000}) for _ in range(4)]
    try:
        for sleeper in sleepers:
            await wait_for_status(alice, sleeper, "RUNNING")
        queued = await submit(alice, "print('must never run')\n")
        assert (await execution(alice, queued))["status"] == "QUEUED"
        assert await cancel(alice, queued) == {"id": queued, "status": "CANCELLED"}
        events = await collect(alice, queued)
        assert [(e["kind"], e["seq"], e["status"]) for e in events] == [("status", 1, "CANCELLED")]
    finally:
        for sleeper in sleepers:
            await cancel(alice, sleeper)
    for sleeper in sleepers:
        assert final(await collect(alice, sleeper))["status"] == "CANCELLED"
    # Once the worker is free it takes the cancelled job off the queue and must leave it alone.
    assert final(await collect(alice, await submit(alice, "print('after')\n")))["status"] == "SUCCEEDED"
    after = await execution(alice, queued)
    assert (after["status"], after["startedAt"], after["stdout"]) == ("CANCELLED", None, "")
    assert [e["status"] for e in await collect(alice, queued)] == ["CANCELLED"]


async def test_cancelling_a_finished_run_is_a_conflict(alice: GraphQLClient) -> None:
    execution_id = await submit(alice, "print('done')\n")
    assert final(await collect(alice, execution_id))["status"] == "SUCCEEDED"
    with pytest.raises(GraphQLFailure) as failure:
        await cancel(alice, execution_id)
    assert failure.value.code == "CONFLICT"
    assert (await execution(alice, execution_id))["status"] == "SUCCEEDED"


@pytest.mark.pods
async def test_cancelling_twice_is_fine(alice: GraphQLClient) -> None:
    execution_id = await submit(alice, SLEEPER)
    await wait_for_status(alice, execution_id, "RUNNING")
    first, second = await asyncio.gather(cancel(alice, execution_id), cancel(alice, execution_id))
    assert first["id"] == second["id"] == execution_id
    events = await collect(alice, execution_id)
    assert [e["status"] for e in events if e["kind"] == "status"] == ["STARTING", "RUNNING", "CANCELLED"]
    assert (await cancel(alice, execution_id))["status"] == "CANCELLED"


# Never reads its stdin while the test runs (the test cancels it).
NEVER_READS = "import time\nprint('ready', flush=True)\ntime.sleep(58)\n"


async def test_input_a_run_does_not_read_is_refused_past_the_cap_and_what_was_accepted_is_kept(
    alice: GraphQLClient, settings: Settings
) -> None:
    execution_id = await submit(alice, NEVER_READS, limits={"wallTimeMs": 60_000})
    try:
        await wait_for_status(alice, execution_id, "RUNNING", timeout=60)
        chunk = "x" * 60_000
        refused: list[GraphQLFailure] = []
        sending = asyncio.Semaphore(10)

        async def send() -> int:
            async with sending:
                try:
                    assert await send_input(alice, execution_id, chunk) is True
                except GraphQLFailure as failure:
                    refused.append(failure)
                    return 0
                return len(chunk)

        # Sixty chunks, over twice what can be accepted, so some are refused without outlasting the script.
        accepted = sum(await asyncio.gather(*(send() for _ in range(60))))
        # What waits for the script: within the cap in Redis, plus what the sandbox's harness and pipes hold.
        cap = settings.limits.pending_input_bytes
        assert cap - len(chunk) < accepted <= cap + harness.MAX_PENDING_STDIN + 4 * 64 * 1024
        assert {failure.code for failure in refused} == {"RATE_LIMITED"}
        assert all(failure.errors[0]["extensions"]["retryAfterMs"] > 0 for failure in refused)
        # Every accepted call is in the run's control stream, in order for the worker, and no refused one.
        control = redis.Redis.from_url(settings.redis_url).xrange(f"{settings.redis_prefix}:control:{execution_id}")
        assert [fields[b"data"] for _, fields in control] == [chunk.encode()] * (accepted // len(chunk))
    finally:
        await cancel(alice, execution_id)
