"""Live output: timing, replay, resume, late joiners and replays from PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import redis

from podrun.settings import Settings
from tests.client import EVENTS, GraphQLClient
from tests.e2e.helpers import assert_consecutive, collect, final, flatten, lines, submit, summary, wait_for_status

PRINT_SLEEP_PRINT = "import time\nprint('first')\ntime.sleep(0.5)\nprint('second')\n"
SEND_INPUT = "mutation($id: ID!, $data: String!) { sendInput(id: $id, data: $data) }"
LINES_AND_STATUSES = """
subscription($id: ID!, $after: Int) {
  executionEvents(id: $id, afterSeq: $after) {
    __typename
    ... on OutputChunk { lines { seq stream text partial at } }
    ... on StatusChange { seq status }
  }
}
"""


def output_text(line_events: list[dict[str, Any]]) -> str:
    """The output the lines were cut from: each whole line with its newline back, partial pieces joined."""
    return "".join(e["text"] + ("" if e["partial"] else "\n") for e in line_events)


async def run_when_followed(client: GraphQLClient, script: str) -> list[tuple[float, dict[str, Any]]]:
    """Run `script` once the runner follows its output; every event with the time it arrived.

    The script first waits for a line on stdin, sent when the run is RUNNING. Whatever a script prints
    earlier reaches the worker at once when it starts following (a pod's log is followed from when the
    kubelet reports the container running, up to a second after it started), like a late joiner's replay.
    """
    execution_id = await submit(client, "input()\n" + script)
    events: list[tuple[float, dict[str, Any]]] = []
    async for data in client.subscribe(EVENTS, {"id": execution_id}):
        for event in flatten(data["executionEvents"]):
            events.append((time.monotonic(), event))
            if event["kind"] == "status" and event["status"] == "RUNNING":
                await client.execute(SEND_INPUT, {"id": execution_id, "data": "go\n"})
    return events


@pytest.mark.pods
async def test_first_line_arrives_before_the_second_is_printed(alice: GraphQLClient) -> None:
    arrived = await run_when_followed(alice, PRINT_SLEEP_PRINT)
    events = [event for _, event in arrived]
    arrivals = {event["text"]: at for at, event in arrived if event["kind"] == "line"}
    assert lines(events) == ["first", "second"]
    # The script sleeps 0.5 s between the two prints; a buffered stream would deliver them together.
    assert arrivals["second"] - arrivals["first"] >= 0.4
    assert [e["status"] for e in events if e["kind"] == "status"] == ["STARTING", "RUNNING", "SUCCEEDED"]
    assert_consecutive(events)
    assert final(events)["stdout"] == "first\nsecond\n"
    assert final(events)["exitCode"] == 0


@pytest.mark.pods
async def test_late_join_and_resume_see_every_line_once_in_order(alice: GraphQLClient) -> None:
    script = "import time\nfor i in range(40):\n    print(i)\n    time.sleep(0.02)\n"
    execution_id = await submit(alice, script)
    await asyncio.sleep(0.9)  # join late, mid-run
    events = await collect(alice, execution_id)
    assert lines(events) == [str(i) for i in range(40)]
    assert_consecutive(events)
    # A reconnecting client resumes after the last seq it saw, from anywhere in the log.
    for after in (0, 3, 17, events[-2]["seq"]):
        resumed = await collect(alice, execution_id, after=after)
        assert summary(resumed) == summary(events)[after:]


@pytest.mark.pods
async def test_subscribing_after_the_log_expired_replays_from_postgres(
    alice: GraphQLClient, settings: Settings
) -> None:
    execution_id = await submit(alice, "print('kept')\nprint('in postgres')\n")
    live = await collect(alice, execution_id)
    redis.Redis.from_url(settings.redis_url).delete(f"{settings.redis_prefix}:events:{execution_id}")
    replayed = await collect(alice, execution_id)
    assert summary(replayed) == summary(live)
    assert summary(await collect(alice, execution_id, after=3)) == summary(live)[3:]


@pytest.mark.pods
async def test_stdout_and_stderr_stay_apart(alice: GraphQLClient) -> None:
    script = "import sys\nprint('out 1')\nprint('err 1', file=sys.stderr)\nprint('out 2')\n"
    events = await collect(alice, await submit(alice, script))
    assert lines(events, "STDOUT") == ["out 1", "out 2"]
    assert lines(events, "STDERR") == ["err 1"]
    assert final(events)["stderr"] == "err 1\n"


@pytest.mark.pods
async def test_partial_line_shows_before_its_newline(alice: GraphQLClient) -> None:
    script = "import sys, time\nsys.stdout.write('Name: ')\nsys.stdout.flush()\ntime.sleep(0.6)\nprint('done')\n"
    events = [event for _, event in await run_when_followed(alice, script)]
    texts = [(e["text"], e["partial"]) for e in events if e["kind"] == "line"]
    assert texts == [("Name: ", True), ("done", False)]
    assert final(events)["stdout"] == "Name: done\n"


@pytest.mark.pods
async def test_invalid_utf8_nul_and_long_lines_do_not_break_the_stream(alice: GraphQLClient) -> None:
    script = (
        "import sys\n"
        "sys.stdout.buffer.write(b'bad \\xff\\xfe bytes\\n')\n"
        "sys.stdout.buffer.write(b'nul \\x00 byte\\n')\n"
        "sys.stdout.write('x' * 200000 + '\\n')\n"
        "print('end')\n"
    )
    events = await collect(alice, await submit(alice, script, limits={"outputBytes": 1_000_000}))
    out = [e for e in events if e["kind"] == "line"]
    assert out[0]["text"] == "bad \ufffd\ufffd bytes"
    assert out[1]["text"] == "nul \ufffd byte"
    long_pieces = out[2:-1]
    assert "".join(p["text"] for p in long_pieces) == "x" * 200000
    assert all(len(p["text"].encode()) <= 64 * 1024 for p in long_pieces)
    assert [p["partial"] for p in long_pieces] == [True] * (len(long_pieces) - 1) + [False]
    assert out[-1]["text"] == "end"
    assert final(events)["status"] == "SUCCEEDED"


async def test_websocket_authorization_key_is_case_insensitive(alice: GraphQLClient) -> None:
    """GraphiQL forwards its Headers tab as the connection_init payload, capitalised as typed."""
    from gql import Client, GraphQLRequest

    execution_id = await submit(alice, "print('hi')\n")
    transport = alice.transport({"Authorization": f"Bearer {alice.token}"})
    async with Client(transport=transport) as session:
        events = [
            event
            async for data in session.subscribe(
                GraphQLRequest(EVENTS, variable_values={"id": execution_id, "after": 0})
            )
            for event in flatten(data["executionEvents"])
        ]
    assert lines(events) == ["hi"]


@pytest.mark.pods
async def test_a_3_mib_line_reaches_a_client_with_a_1_mib_message_limit(alice: GraphQLClient) -> None:
    # tests/client.py speaks through the `websockets` library, whose messages may be 1 MiB at most.
    script = "import sys\nsys.stdout.write('x' * (3 * 1024 * 1024) + '\\n')\nprint('after')\n"
    execution_id = await submit(alice, script, limits={"outputBytes": 4 * 1024 * 1024})
    messages = []
    # Without `execution { stdout }` in the status changes: that alone would be a 3 MiB message.
    async for data in alice.subscribe(LINES_AND_STATUSES, {"id": execution_id, "after": 0}):
        messages.append(data["executionEvents"])
    events = [event for message in messages for event in flatten(message)]
    assert_consecutive(events)
    pieces = [e for e in events if e["kind"] == "line"]
    assert output_text(pieces) == "x" * (3 * 1024 * 1024) + "\nafter\n"
    # Each message stays under 256 KiB of JSON, so the 3 MiB arrive in a dozen or more.
    chunks = [m for m in messages if m["__typename"] == "OutputChunk"]
    assert len(chunks) >= 12
    assert max(len(json.dumps(chunk)) for chunk in chunks) < 256 * 1024


async def test_a_hundred_thousand_quick_prints_replay_without_a_split_line(alice: GraphQLClient) -> None:
    # The largest wall limit: this is about lines, not speed, and a busy machine slows the pipe.
    execution_id = await submit(alice, "for i in range(100_000):\n    print(i)\n", limits={"wallTimeMs": 60_000})
    events = await collect(alice, execution_id)
    assert final(events)["status"] == "SUCCEEDED"
    line_events = [e for e in events if e["kind"] == "line"]
    # A partial line is flushed only after 100 ms without output. A starved machine may pause the script that long
    # now and then; splitting at every read that ends mid-line would split one in each 8 KiB block, about 70 here.
    split = [e["text"] for e in line_events if e["partial"]]
    assert len(split) <= 3, split
    texts = output_text(line_events).splitlines()
    wanted = [str(i) for i in range(100_000)]
    # The first difference, not a diff of 100,000 lines.
    differs = next((i for i, text in enumerate(texts) if i >= len(wanted) or text != wanted[i]), None)
    assert (len(texts), differs) == (len(wanted), None), texts[(differs or 0) : (differs or 0) + 3]


# Writes a million empty lines (1 MB, within the default output cap), then waits for a line on stdin: the run
# holds its worker slot and its flood until the neighbour's run is over, so that run goes on beside it.
MILLION_EMPTY_LINES = "import sys\nsys.stdout.write('\\n' * 1_000_000)\nsys.stdout.flush()\ninput()\n"
STATUS = "query($id: ID!) { execution(id: $id) { status } }"
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "ERROR")


async def count_lines(client: GraphQLClient, execution_id: str, after: int) -> tuple[int, list[str]]:
    """Lines received after `after` (each checked empty, seqs checked contiguous) and the statuses, not kept."""
    next_seq, line_count, statuses = after + 1, 0, []
    async for data in client.subscribe(LINES_AND_STATUSES, {"id": execution_id, "after": after}):
        for event in flatten(data["executionEvents"]):
            assert event["seq"] == next_seq, (event["seq"], next_seq)
            next_seq += 1
            if event["kind"] == "line":
                assert (event["text"], event["stream"], event["partial"]) == ("", "STDOUT", False)
                line_count += 1
            else:
                statuses.append(event["status"])
    return line_count, statuses


@pytest.mark.timeout(300)
async def test_a_million_empty_lines_finish_within_the_default_limits_beside_a_neighbour(
    alice: GraphQLClient, bob: GraphQLClient
) -> None:
    flood_id = await submit(alice, MILLION_EMPTY_LINES)
    # Polled for the status alone: the flood's watcher comes after, so what is shown here is the worker's share
    # (the API's cost of a million OutputLines is its own, measured by the bench's short-lines scenario).
    while (await alice.execute(STATUS, {"id": flood_id}))["execution"]["status"] != "RUNNING":  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    neighbour_id = await submit(bob, "print('fair')\n")
    neighbour = await wait_for_status(bob, neighbour_id, *TERMINAL, timeout=60)
    assert (neighbour["status"], neighbour["stdout"]) == ("SUCCEEDED", "fair\n")
    await alice.execute(SEND_INPUT, {"id": flood_id, "data": "done\n"})
    # STARTING, RUNNING, then the lines at seqs 3 to 1,000,002 (in batches of 1,000 from 3), then the end.
    assert await count_lines(alice, flood_id, after=0) == (1_000_000, ["STARTING", "RUNNING", "SUCCEEDED"])
    assert await count_lines(alice, flood_id, after=999_999) == (3, ["SUCCEEDED"])
