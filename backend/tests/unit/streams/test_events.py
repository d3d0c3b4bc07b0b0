"""Lines stored in batches: numbering, bounds, both stored forms, and logs written before batches."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from podrun.core.output import Stream
from podrun.core.statuses import ExecutionStatus
from podrun.streams.events import (
    BATCH_CHARS,
    BATCH_LINES,
    Entry,
    LineBatch,
    LineEvent,
    Lines,
    StatusEvent,
    archived_json,
    batch_lines,
    from_fields,
    from_json,
    joined_output,
    to_fields,
    unfold,
)

OUT, ERR = Stream.STDOUT, Stream.STDERR
AT = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def test_lines_keep_their_seq_stream_text_and_partial_flag_in_a_batch() -> None:
    runs = [(OUT, ["a", "", "b"], False), (ERR, ["e1"], False), (OUT, ["pie", "ces"], True), (ERR, ["tail"], True)]
    [batch] = batch_lines(5, AT, runs)
    assert (batch.seq, batch.last) == (5, 11)
    assert batch.lines() == [
        LineEvent(5, OUT, "a", AT),
        LineEvent(6, OUT, "", AT),
        LineEvent(7, OUT, "b", AT),
        LineEvent(8, ERR, "e1", AT),
        LineEvent(9, OUT, "pie", AT, partial=True),
        LineEvent(10, OUT, "ces", AT, partial=True),
        LineEvent(11, ERR, "tail", AT, partial=True),
    ]
    assert "".join(batch.output(OUT)) == "a\n\nb\npieces"
    assert "".join(batch.output(ERR)) == "e1\ntail"


def test_a_million_empty_lines_are_a_thousand_batches_numbered_without_gaps() -> None:
    batches = batch_lines(2, AT, [(OUT, [""] * 1_000_000, False)])
    assert len(batches) == 1_000_000 // BATCH_LINES
    assert [b.seq for b in batches] == list(range(2, 1_000_002, BATCH_LINES))
    assert batches[-1].last == 1_000_001
    assert joined_output(batches, OUT) == "\n" * 1_000_000
    assert joined_output(batches, ERR) == ""


def test_batches_stay_within_the_character_bound_and_a_longer_line_gets_its_own() -> None:
    long = "x" * (BATCH_CHARS + 10)
    texts = ["y" * 1000] * 100 + [long] + ["z"] * 3
    batches = batch_lines(1, AT, [(OUT, texts[:50], False), (OUT, texts[50:], False)])
    assert [line.text for line in unfold(batches)] == texts
    assert [line.seq for line in unfold(batches)] == list(range(1, len(texts) + 1))
    # 65 lines of 1,000 characters fit in BATCH_CHARS; the long line is alone; the short ones after it start anew.
    assert [(batch.seq, batch.last) for batch in batches] == [(1, 65), (66, 100), (101, 101), (102, 104)]
    assert batches[2] == LineBatch(101, AT, "o", long)


@pytest.mark.parametrize(
    "entry",
    [
        LineBatch(3, AT, "oOeE", "a\nb\n\nd"),
        LineEvent(3, ERR, "old single line", AT, partial=True),
        StatusEvent(3, ExecutionStatus.RUNNING, AT),
    ],
)
def test_an_entry_reads_back_from_redis_and_from_the_archive(entry: Entry) -> None:
    fields = {key.encode(): value for key, value in to_fields(entry).items()}
    assert from_fields(entry.last, fields) == entry
    assert from_json(json.loads(archived_json(entry))) == entry


def test_logs_written_before_batches_read_as_they_were() -> None:
    # Exactly what today's main wrote: one Redis entry and one archive record per line.
    redis_fields = {b"k": b"l", b"s": b"e", b"t": "caf\u00e9".encode(), b"at": b"1767323045678", b"p": b""}
    archived = [
        {"seq": 1, "status": "RUNNING", "at": AT.isoformat()},
        {"seq": 2, "stream": "STDOUT", "text": "one", "at": AT.isoformat(), "partial": False},
        {"seq": 3, "stream": "STDOUT", "text": "part", "at": AT.isoformat(), "partial": True},
        {"seq": 4, "status": "SUCCEEDED", "at": AT.isoformat()},
    ]
    assert from_fields(7, redis_fields) == LineEvent(7, ERR, "caf\u00e9", AT)
    entries = [from_json(record) for record in archived]
    assert list(unfold(entries)) == [
        StatusEvent(1, ExecutionStatus.RUNNING, AT),
        LineEvent(2, OUT, "one", AT),
        LineEvent(3, OUT, "part", AT, partial=True),
        StatusEvent(4, ExecutionStatus.SUCCEEDED, AT),
    ]
    assert joined_output(entries, OUT) == "one\npart"


BATCHES = [
    LineBatch(1, AT, "oOeE", "a\nb\n\nd"),
    LineBatch(5, AT, "oooo", "plain\nascii\nlines\n!"),
    LineBatch(9, AT, "oeo", "tab\there\nnon-ASCII é\n\x00"),
]


@pytest.mark.parametrize("batch", BATCHES, ids=["codes", "printable", "escaped"])
def test_a_batch_knows_its_lines_bounds_without_unfolding_them(batch: LineBatch) -> None:
    sizes = [line.wire_bytes for line in batch.lines()]
    assert batch.wire_bytes == sum(sizes)
    for count in range(len(sizes) + 1):
        room = sum(sizes[:count])
        assert batch.fitting(room) == count
        assert batch.fitting(room - 1) == max(count - 1, 0)
    for count in range(1, len(sizes)):
        head, rest = batch.split(count)
        assert head.lines() + rest.lines() == batch.lines()
        assert (head.last, rest.seq) == (batch.seq + count - 1, batch.seq + count)


def test_lines_give_their_events_or_their_columns() -> None:
    single = LineEvent(12, ERR, "old single line", AT, partial=True)
    lines = Lines([*BATCHES, single])
    events = [*unfold(BATCHES), single]
    assert list(lines) == events
    assert len(lines) == len(events)
    for attribute in LineEvent.__struct_fields__:
        assert lines.column(attribute) == [getattr(event, attribute) for event in events]
    assert lines.column("nothing") is None
    assert Lines([single]).column("nothing") is None
