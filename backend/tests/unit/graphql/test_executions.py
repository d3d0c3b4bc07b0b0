"""A subscription's messages: the same chunks of lines as one line at a time would make, kept in their batches."""

from __future__ import annotations

from datetime import UTC, datetime

from podrun.core.output import Stream
from podrun.core.statuses import ExecutionStatus
from podrun.graphql.executions import MAX_CHUNK_BYTES, _messages
from podrun.streams.events import Entry, Event, LineEvent, Lines, StatusEvent, batch_lines, unfold

AT = datetime(2026, 12, 6, 22, 0, 0, 123000, tzinfo=UTC)


def line_by_line(events: list[Event]) -> list[list[int] | int]:
    """The seqs of each message as chunking one line at a time makes them (a status: its seq alone)."""
    messages: list[list[int] | int] = []
    chunk: list[int] = []
    size = 0
    for event in events:
        if not isinstance(event, LineEvent):
            messages.extend([chunk, event.seq] if chunk else [event.seq])
            chunk, size = [], 0
            continue
        if size + event.wire_bytes > MAX_CHUNK_BYTES and chunk:
            messages.append(chunk)
            chunk, size = [], 0
        chunk.append(event.seq)
        size += event.wire_bytes
    return [*messages, chunk] if chunk else messages


def test_chunks_are_cut_where_one_line_at_a_time_would_cut_them() -> None:
    runs = [
        (Stream.STDOUT, [""] * 2500, False),
        (Stream.STDERR, ["é" * 300] * 900, False),
        (Stream.STDOUT, ["x" * 65_000, "y" * 100_000], False),
        (Stream.STDOUT, ["partial"], True),
    ]
    first = batch_lines(2, AT, runs)
    status = StatusEvent(first[-1].last + 1, ExecutionStatus.RUNNING, AT)
    older = LineEvent(status.seq + 1, Stream.STDOUT, "z" * 120_000, AT)
    entries: list[Entry] = [
        StatusEvent(1, ExecutionStatus.STARTING, AT),
        *first,
        status,
        older,
        *batch_lines(older.seq + 1, AT, [(Stream.STDOUT, ["tail"] * 3000, False)]),
    ]
    messages = list(_messages(entries))
    seqs = [[line.seq for line in message] if isinstance(message, Lines) else message.seq for message in messages]
    assert seqs == line_by_line(list(unfold(entries)))
    assert [line for message in messages if isinstance(message, Lines) for line in message] == [
        event for event in unfold(entries) if isinstance(event, LineEvent)
    ]
