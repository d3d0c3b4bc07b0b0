"""The subscriber's cursor: every seq once, in order, never past a gap or the end."""

from __future__ import annotations

from datetime import UTC, datetime

from podrun.core.output import Stream
from podrun.core.statuses import ExecutionStatus
from podrun.streams.events import Event, LineBatch, LineEvent, StatusEvent
from podrun.streams.follow import _Cursor

NOW = datetime.now(UTC)


def line(seq: int) -> LineEvent:
    return LineEvent(seq=seq, stream=Stream.STDOUT, text=str(seq), at=NOW)


def status(seq: int, value: ExecutionStatus) -> StatusEvent:
    return StatusEvent(seq=seq, status=value, at=NOW)


def seqs(events: list[Event]) -> list[int]:
    return [event.seq for event in events]


def test_duplicates_are_dropped() -> None:
    cursor = _Cursor(after_seq=2)
    assert seqs(cursor.take([line(1), line(2), line(3), line(4)])) == [3, 4]
    assert seqs(cursor.take([line(3), line(4), line(5)])) == [5]


def test_a_gap_stops_the_cursor_until_it_is_filled() -> None:
    cursor = _Cursor(after_seq=0)
    assert seqs(cursor.take([line(1), line(3)])) == [1]
    assert cursor.seq == 1
    assert seqs(cursor.take([line(2), line(3)])) == [2, 3]


def test_the_terminal_status_ends_the_log() -> None:
    cursor = _Cursor(after_seq=0)
    taken = cursor.take([status(1, ExecutionStatus.RUNNING), status(2, ExecutionStatus.SUCCEEDED), line(3)])
    assert seqs(taken) == [1, 2]
    assert cursor.done


def test_a_batch_that_starts_at_or_before_the_cursor_is_cut_after_it() -> None:
    cursor = _Cursor(after_seq=3)
    batch = LineBatch(2, NOW, "oooo", "2\n3\n4\n5")
    taken = cursor.take([line(1), batch, status(6, ExecutionStatus.SUCCEEDED)])
    assert taken == [LineBatch(4, NOW, "oo", "4\n5"), status(6, ExecutionStatus.SUCCEEDED)]
    assert (cursor.seq, cursor.done) == (6, True)
    assert _Cursor(after_seq=5).take([batch, line(6)]) == [line(6)]
