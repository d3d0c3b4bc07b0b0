"""The executionEvents resolver in-process (schema.subscribe), against the real PostgreSQL and Redis."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from podrun.accounts.models import User
from podrun.accounts.sign_ins import Caller
from podrun.container import Container
from podrun.core.limits import Limits
from podrun.core.output import Stream
from podrun.core.statuses import ExecutionStatus
from podrun.executions.models import Execution, ExecutionLog
from podrun.executions.outcomes import Outcome
from podrun.graphql.context import Context
from podrun.graphql.schema import schema
from podrun.graphql.snapshots import StatusSnapshots
from podrun.streams.log import LogWriter

EVENTS = """
subscription($id: ID!, $after: Int) {
  executionEvents(id: $id, afterSeq: $after) {
    __typename
    ... on OutputChunk { lines { seq stream text partial } }
    ... on StatusChange { seq status execution { id status stdout } }
  }
}
"""
LIMITS = Limits(wall_time_ms=1000, cpu_time_ms=1000, memory_mib=64, output_bytes=1 << 20, processes=4)


async def user(container: Container) -> User:
    async with container.users() as users:
        return await users.create_user(f"sub-{uuid.uuid4().hex[:12]}@example.com", "subscriber horse battery staple")


async def running_execution(container: Container, owner: User) -> tuple[Execution, LogWriter]:
    """A run a (pretend) worker is driving: RUNNING, with its log started. No job is enqueued, and the
    holder's heartbeat keeps the watchdogs of other test workers sharing this database away from it."""
    holder = f"test-holder-{uuid.uuid4().hex}"
    await container.heartbeats.beat(holder, 120)
    async with container.executions() as executions:
        execution = await executions.repository.add(
            Execution(
                owner_id=owner.id,
                runtime="python-3.12",
                script="",
                limits=LIMITS,
                status=ExecutionStatus.RUNNING,
                worker_id=holder,
            ),
            auto_commit=True,
        )
        writer = await LogWriter.resume(executions.event_log(execution.id))
    await writer.status(writer.status_event(ExecutionStatus.STARTING))
    await writer.status(writer.status_event(ExecutionStatus.RUNNING))
    return execution, writer


async def subscribe(container: Container, caller: User | None, execution_id: object, after: int = 0) -> Any:
    context = Context(
        container=container,
        caller=Caller(user=caller, sign_in_id=uuid.uuid4()) if caller is not None else None,
        authenticated=True,
    )
    return await schema.subscribe(EVENTS, {"id": str(execution_id), "after": after}, context_value=context)


async def test_replays_then_follows_live_then_completes_after_the_terminal_status(container: Container) -> None:
    owner = await user(container)
    execution, writer = await running_execution(container, owner)
    await writer.lines([(Stream.STDOUT, ["before"], False)])
    results = await subscribe(container, owner, execution.id)
    received: list[dict[str, Any]] = []
    async for result in results:
        assert result.errors is None, result.errors
        event = result.data["executionEvents"]
        received.append(event)
        if event.get("lines") == [{"seq": 3, "stream": "STDOUT", "text": "before", "partial": False}]:
            await writer.lines([(Stream.STDERR, ["live"], False), (Stream.STDOUT, ["tail"], True)])
        if event.get("lines") and event["lines"][-1]["text"] == "tail":
            async with container.executions() as executions:
                assert await executions.finish(execution.id, Outcome(ExecutionStatus.SUCCEEDED, exit_code=0), writer)
    flat = [
        (line["seq"], line["stream"], line["text"])
        if chunk["__typename"] == "OutputChunk"
        else (chunk["seq"], chunk["status"])
        for chunk in received
        for line in (chunk.get("lines") or [None])
    ]
    assert flat == [
        (1, "STARTING"),
        (2, "RUNNING"),
        (3, "STDOUT", "before"),
        (4, "STDERR", "live"),
        (5, "STDOUT", "tail"),
        (6, "SUCCEEDED"),
    ]
    assert received[-1]["execution"] == {"id": str(execution.id), "status": "SUCCEEDED", "stdout": "before\ntail"}


async def test_after_seq_resumes_a_finished_run_from_its_archive(container: Container) -> None:
    owner = await user(container)
    execution, writer = await running_execution(container, owner)
    await writer.lines([(Stream.STDOUT, [str(i) for i in range(5)], False)])
    async with container.executions() as executions:
        await executions.finish(execution.id, Outcome(ExecutionStatus.FAILED, exit_code=1), writer)
    await container.redis.delete(container.keys.events(execution.id))  # Redis lost it: PostgreSQL answers
    results = await subscribe(container, owner, execution.id, after=5)
    events = [result.data["executionEvents"] async for result in results]
    assert [line["text"] for line in events[0]["lines"]] == ["3", "4"]
    assert (events[-1]["seq"], events[-1]["status"], len(events)) == (8, "FAILED", 2)


async def test_signed_out_is_unauthenticated_and_another_users_run_is_not_found(container: Container) -> None:
    owner, stranger = await user(container), await user(container)
    execution, _ = await running_execution(container, owner)
    for caller, code in ((None, "UNAUTHENTICATED"), (stranger, "NOT_FOUND")):
        result = await subscribe(container, caller, execution.id)
        # Refused before it starts: one result with the error, as a whole or as the stream's only item.
        errors = result.errors if hasattr(result, "errors") else [r async for r in result][-1].errors
        assert [error.extensions["code"] for error in errors] == [code]


async def replayed(container: Container, caller: User, execution_id: object, after: int) -> list[tuple[object, ...]]:
    """(seq, stream, text, partial) per line and (seq, status) per status change, as a subscriber receives them."""
    events = []
    async for result in await subscribe(container, caller, execution_id, after):
        assert result.errors is None, result.errors
        assert result.data is not None
        events.append(result.data["executionEvents"])
    return [
        (line["seq"], line["stream"], line["text"], line["partial"])
        if event["__typename"] == "OutputChunk"
        else (event["seq"], event["status"])
        for event in events
        for line in (event.get("lines") or [None])
    ]


async def test_a_log_written_one_line_per_entry_before_batches_is_continued_and_replayed(container: Container) -> None:
    owner = await user(container)
    execution, _ = await running_execution(container, owner)
    key = container.keys.events(execution.id)
    # Exactly as the worker of the previous version appended lines: one stream entry each, its id the seq.
    old_lines = [("o", "old 1", ""), ("e", "old err", ""), ("o", "old part", "1")]
    for seq, (stream, text, partial) in enumerate(old_lines, start=3):
        fields = {"k": "l", "s": stream, "t": text, "at": "1767323045678", "p": partial}
        await container.redis.xadd(key, fields, id=f"0-{seq}")  # type: ignore[arg-type]
    # A worker of this version takes the log over (a retried job) and goes on in batches.
    async with container.executions() as executions:
        writer = await LogWriter.resume(executions.event_log(execution.id))
        await writer.lines([(Stream.STDOUT, [" new 1", "new 2"], False)])
        assert await executions.finish(execution.id, Outcome(ExecutionStatus.SUCCEEDED, exit_code=0), writer)
        archived = [await executions.repository.output(execution.id, stream) for stream in Stream]
        assert archived == ["old 1\nold part new 1\nnew 2\n", "old err\n"]
    expected = [
        (4, "STDERR", "old err", False),
        (5, "STDOUT", "old part", True),
        (6, "STDOUT", " new 1", False),
        (7, "STDOUT", "new 2", False),
        (8, "SUCCEEDED"),
    ]
    assert await replayed(container, owner, execution.id, after=3) == expected
    await container.redis.delete(key)  # from the archive, which holds both forms now
    assert await replayed(container, owner, execution.id, after=3) == expected


async def test_an_archive_written_one_record_per_line_before_batches_replays(container: Container) -> None:
    owner = await user(container)
    async with container.executions() as executions:
        execution = await executions.repository.add(
            Execution(
                owner_id=owner.id, runtime="python-3.12", script="", limits=LIMITS, status=ExecutionStatus.FAILED
            ),
            auto_commit=True,
        )
        at = "2026-11-30T10:17:48.123000+00:00"
        # The archive row exactly as the previous version wrote it: one JSON record per event.
        records = [
            {"seq": 1, "status": "STARTING", "at": at},
            {"seq": 2, "status": "RUNNING", "at": at},
            {"seq": 3, "stream": "STDOUT", "text": "one", "at": at, "partial": False},
            {"seq": 4, "stream": "STDERR", "text": "two", "at": at, "partial": True},
            {"seq": 5, "status": "FAILED", "at": at},
        ]
        executions.repository.session.add(ExecutionLog(execution_id=execution.id, events=records))
        await executions.repository.session.commit()
    assert await replayed(container, owner, execution.id, after=2) == [
        (3, "STDOUT", "one", False),
        (4, "STDERR", "two", True),
        (5, "FAILED"),
    ]


async def test_batches_written_by_the_previous_codec_are_continued_and_replayed(container: Container) -> None:
    owner = await user(container)
    execution, _ = await running_execution(container, owner)
    key = container.keys.events(execution.id)
    # Exactly as the worker of the previous codec appended a batch: one field per attribute, its id its last seq.
    fields = {"k": "b", "c": "oeO", "t": "old 1\nold err\nold part", "at": "1767323045678"}
    await container.redis.xadd(key, fields, id="0-5")  # type: ignore[arg-type]
    async with container.executions() as executions:
        writer = await LogWriter.resume(executions.event_log(execution.id))
        await writer.lines([(Stream.STDOUT, [" new"], False)])
        assert await executions.finish(execution.id, Outcome(ExecutionStatus.SUCCEEDED, exit_code=0), writer)
    expected = [
        (3, "STDOUT", "old 1", False),
        (4, "STDERR", "old err", False),
        (5, "STDOUT", "old part", True),
        (6, "STDOUT", " new", False),
        (7, "SUCCEEDED"),
    ]
    assert await replayed(container, owner, execution.id, after=2) == expected
    await container.redis.delete(key)  # from the archive, written by today's codec
    assert await replayed(container, owner, execution.id, after=2) == expected


async def test_an_archive_of_batches_written_by_the_previous_codec_replays(container: Container) -> None:
    owner = await user(container)
    async with container.executions() as executions:
        execution = await executions.repository.add(
            Execution(
                owner_id=owner.id, runtime="python-3.12", script="", limits=LIMITS, status=ExecutionStatus.SUCCEEDED
            ),
            auto_commit=True,
        )
        at = "2026-11-30T10:17:48.123456+00:00"
        # The archive row exactly as the previous codec wrote it (captured by running it).
        records = [
            {"seq": 1, "status": "STARTING", "at": at},
            {"seq": 2, "status": "RUNNING", "at": at},
            {"seq": 3, "codes": "oeO", "text": "one\ntwo\nthree", "at": at},
            {"seq": 6, "status": "SUCCEEDED", "at": at},
        ]
        executions.repository.session.add(ExecutionLog(execution_id=execution.id, events=records))
        await executions.repository.session.commit()
    assert await replayed(container, owner, execution.id, after=3) == [
        (4, "STDERR", "two", False),
        (5, "STDOUT", "three", True),
        (6, "SUCCEEDED"),
    ]


class CountingSnapshots(StatusSnapshots[Any]):
    """The process's shared snapshots, counting the status changes whose execution was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    async def get(self, execution_id: uuid.UUID, seq: int, load: Callable[[], Awaitable[Any]]) -> Any:
        self.asked += 1
        return await super().get(execution_id, seq, load)


STATUSES_ONLY = "subscription($id: ID!) { executionEvents(id: $id) { ... on StatusChange { seq status } } }"
EXECUTION_IN_A_FRAGMENT = """
subscription($id: ID!) { executionEvents(id: $id) { ...event } }
fragment event on ExecutionEvent { ... on StatusChange { seq status execution { status } } }
"""


@pytest.mark.parametrize(("query", "loads"), [(STATUSES_ONLY, 0), (EXECUTION_IN_A_FRAGMENT, 3)])
async def test_a_status_changes_execution_is_loaded_only_when_the_query_selects_it(
    container: Container, query: str, loads: int
) -> None:
    owner = await user(container)
    execution, writer = await running_execution(container, owner)
    async with container.executions() as executions:
        assert await executions.finish(execution.id, Outcome(ExecutionStatus.SUCCEEDED, exit_code=0), writer)
    snapshots = CountingSnapshots()
    context = Context(
        container=container, snapshots=snapshots, caller=Caller(user=owner, sign_in_id=uuid.uuid4()), authenticated=True
    )
    results = await schema.subscribe(query, {"id": str(execution.id)}, context_value=context)
    events = []
    async for result in results:
        assert result.errors is None, result.errors
        assert result.data is not None
        events.append(result.data["executionEvents"])
    assert [(event["seq"], event["status"]) for event in events] == [(1, "STARTING"), (2, "RUNNING"), (3, "SUCCEEDED")]
    assert snapshots.asked == loads
    if loads:
        assert events[-1]["execution"] == {"status": "SUCCEEDED"}
