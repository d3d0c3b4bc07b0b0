"""Dropping exactly the output a re-attached sandbox replays that an earlier attempt logged."""

from __future__ import annotations

from datetime import UTC, datetime

from podrun.core.output import Stream
from podrun.core.statuses import ExecutionStatus
from podrun.executions.already_logged import AlreadyLogged
from podrun.runners.base import OutputBytes
from podrun.streams.events import Event, LineEvent, StatusEvent

AT = datetime(2026, 11, 30, tzinfo=UTC)


def logged(*lines: tuple[Stream, str, bool]) -> list[Event]:
    events: list[Event] = [StatusEvent(seq=1, status=ExecutionStatus.RUNNING, at=AT)]
    events += [LineEvent(seq=2 + i, stream=s, text=t, at=AT, partial=p) for i, (s, t, p) in enumerate(lines)]
    return events


def replay(already: AlreadyLogged, *chunks: tuple[Stream, bytes]) -> list[tuple[Stream, bytes]]:
    fresh = [already.skip(OutputBytes(stream, data)) for stream, data in chunks]
    return [(chunk.stream, chunk.data) for chunk in fresh if chunk.data]


def test_nothing_logged_keeps_everything() -> None:
    already = AlreadyLogged([])
    assert replay(already, (Stream.STDOUT, b"a\nb\n")) == [(Stream.STDOUT, b"a\nb\n")]
    assert already.output_bytes == 0


def test_logged_lines_are_dropped_once_and_the_rest_is_kept() -> None:
    already = AlreadyLogged(logged((Stream.STDOUT, "one", False), (Stream.STDOUT, "two", False)))
    assert already.output_bytes == len(b"one\ntwo\n")
    assert replay(already, (Stream.STDOUT, b"one\ntw"), (Stream.STDOUT, b"o\nthree\n"), (Stream.STDOUT, b"one\n")) == [
        (Stream.STDOUT, b"three\n"),
        (Stream.STDOUT, b"one\n"),
    ]


def test_streams_are_counted_apart() -> None:
    already = AlreadyLogged(logged((Stream.STDERR, "oops", False)))
    assert replay(already, (Stream.STDOUT, b"out\n"), (Stream.STDERR, b"oops\nmore\n")) == [
        (Stream.STDOUT, b"out\n"),
        (Stream.STDERR, b"more\n"),
    ]


def test_a_partial_line_and_a_character_split_across_chunks() -> None:
    already = AlreadyLogged(logged((Stream.STDOUT, "pi=3.14", True)))
    # "é" (c3 a9) arrives split; the partial line had no newline, so what follows it is new.
    assert replay(already, (Stream.STDOUT, b"pi=3.1"), (Stream.STDOUT, b"4 \xc3"), (Stream.STDOUT, b"\xa9\n")) == [
        (Stream.STDOUT, b" \xc3"),
        (Stream.STDOUT, b"\xa9\n"),
    ]


def test_invalid_bytes_and_nul_match_the_replacement_the_log_holds() -> None:
    already = AlreadyLogged(logged((Stream.STDOUT, "a\ufffdb\ufffd", False)))
    assert replay(already, (Stream.STDOUT, b"a\xffb\x00\nnext\n")) == [(Stream.STDOUT, b"next\n")]
