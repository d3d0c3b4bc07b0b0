"""Output bytes to lines: newlines, partial lines, long lines, bad bytes and the output cap."""

from __future__ import annotations

import json
import time

import pytest

from podrun.core.output import Stream
from podrun.streams.lines import MAX_LINE_BYTES, MAX_LINE_JSON, PARTIAL_FLUSH_S, LineAssembler, Run

OUT, ERR = Stream.STDOUT, Stream.STDERR


def flat(runs: list[Run]) -> list[tuple[Stream, str, bool]]:
    """The lines of `runs`, one (stream, text, partial) each."""
    return [(stream, text, partial) for stream, texts, partial in runs for text in texts]


def test_complete_lines_come_out_and_streams_stay_apart() -> None:
    lines = LineAssembler(10_000)
    assert flat(lines.feed(OUT, b"a\nb\npart")) == [(OUT, "a", False), (OUT, "b", False)]
    assert flat(lines.feed(ERR, b"err\n")) == [(ERR, "err", False)]
    assert flat(lines.feed(OUT, b"ial\n")) == [(OUT, "partial", False)]
    assert flat(lines.flush_all()) == []


def test_a_partial_line_is_due_after_the_flush_delay() -> None:
    lines = LineAssembler(10_000)
    assert flat(lines.feed(OUT, b"Name: ")) == []
    due = lines.due_in()
    assert due is not None
    assert 0 < due <= PARTIAL_FLUSH_S
    assert flat(lines.flush_due()) == []
    time.sleep(PARTIAL_FLUSH_S)
    assert flat(lines.flush_due()) == [(OUT, "Name: ", True)]
    assert lines.due_in() is None


def test_a_partial_line_waits_while_output_keeps_coming() -> None:
    lines = LineAssembler(10_000)
    assert flat(lines.feed(OUT, b"50")) == []
    time.sleep(PARTIAL_FLUSH_S * 0.7)
    assert flat(lines.feed(ERR, b"other stream\n")) == [(ERR, "other stream", False)]
    time.sleep(PARTIAL_FLUSH_S * 0.7)
    # 140 ms since the partial began, 70 ms since the last output: not yet.
    assert flat(lines.flush_due()) == []
    assert flat(lines.feed(OUT, b"55\n")) == [(OUT, "5055", False)]


def test_lines_of_control_characters_are_cut_where_their_json_would_pass_the_bound() -> None:
    text = "\x01" * (MAX_LINE_BYTES - 1)  # 64 KiB of bytes, 384 KiB of JSON
    pieces = flat(LineAssembler(10 * MAX_LINE_BYTES).feed(OUT, text.encode() + b"\n"))
    assert "".join(piece for _, piece, _ in pieces) == text
    assert all(len(json.dumps(piece)) <= MAX_LINE_JSON for _, piece, _ in pieces)
    assert [partial for _, _, partial in pieces] == [True] * (len(pieces) - 1) + [False]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"bad \xff byte\n", "bad \ufffd byte"),
        (b"nul \x00 byte\n", "nul \ufffd byte"),
        ("caf\u00e9\n".encode(), "caf\u00e9"),
    ],
)
def test_bytes_become_safe_text(data: bytes, expected: str) -> None:
    assert flat(LineAssembler(10_000).feed(OUT, data)) == [(OUT, expected, False)]


def test_a_utf8_sequence_split_across_chunks_is_kept_whole() -> None:
    lines = LineAssembler(10_000)
    encoded = "\u00e9\n".encode()
    assert flat(lines.feed(OUT, encoded[:1])) == []
    assert flat(lines.feed(OUT, encoded[1:])) == [(OUT, "\u00e9", False)]


def test_long_lines_are_split_at_64_kib_on_character_boundaries() -> None:
    text = "\u00e9" * MAX_LINE_BYTES  # two bytes each
    pieces = flat(LineAssembler(10 * MAX_LINE_BYTES).feed(OUT, text.encode() + b"\n"))
    assert "".join(piece for _, piece, _ in pieces) == text
    assert all(len(piece.encode()) <= MAX_LINE_BYTES for _, piece, _ in pieces)
    assert [partial for _, _, partial in pieces] == [True] * (len(pieces) - 1) + [False]


def test_output_past_the_cap_is_dropped_and_flagged() -> None:
    lines = LineAssembler(10)
    assert flat(lines.feed(OUT, b"12345\n")) == [(OUT, "12345", False)]
    assert flat(lines.feed(OUT, b"67890\nabc\n")) == []
    assert lines.truncated
    assert flat(lines.flush_all()) == [(OUT, "6789", True)]
    assert lines.output_bytes == 10


def test_a_chunk_of_short_lines_is_one_run() -> None:
    assert LineAssembler(10_000).feed(OUT, b"\n" * 1000 + b"a\nb") == [(OUT, [""] * 1000 + ["a"], False)]
