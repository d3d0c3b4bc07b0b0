"""Logs stored by the code before one codec served both stores still read as they were written.

The records below are literal: what `to_fields` and `to_json` of that code wrote for these entries
(captured by running it), Redis times in epoch milliseconds and archive times in ISO form.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from podrun.core.output import Stream
from podrun.core.statuses import ExecutionStatus
from podrun.streams.events import (
    ArtifactEvent,
    Entry,
    LineBatch,
    LineEvent,
    StatusEvent,
    archived_json,
    from_fields,
    from_json,
    joined_output,
    to_fields,
    unfold,
)

AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
AT_MS = AT.replace(microsecond=678000)
ARTIFACT = UUID("0190a8b2-0000-7000-8000-000000000001")
TEXT = 'a\n\ncaf\u00e9 "q" \\ \t\nerr\npart'

# (id of the entry, its fields), as XRANGE returns them.
OLD_REDIS: list[tuple[int, dict[bytes, bytes]]] = [
    (1, {b"k": b"s", b"st": b"RUNNING", b"at": b"1767323045678"}),
    (6, {b"k": b"b", b"c": b"oooeO", b"t": b'a\n\ncaf\xc3\xa9 "q" \\ \t\nerr\npart', b"at": b"1767323045678"}),
    (7, {b"k": b"l", b"s": b"e", b"t": b"old single line", b"at": b"1767323045678", b"p": b"1"}),
    (8, {b"k": b"l", b"s": b"o", b"t": b"old whole line", b"at": b"1767323045678", b"p": b""}),
    (
        9,
        {
            b"k": b"a",
            b"id": b"0190a8b2-0000-7000-8000-000000000001",
            b"n": b"plot.png",
            b"m": b"image/png",
            b"z": b"1234",
            b"at": b"1767323045678",
        },
    ),
    (10, {b"k": b"s", b"st": b"SUCCEEDED", b"at": b"1767323045678"}),
]
OLD_ARCHIVE: list[dict[str, Any]] = [
    {"seq": 1, "status": "RUNNING", "at": "2026-01-02T03:04:05.678901+00:00"},
    {
        "seq": 2,
        "codes": "oooeO",
        "text": 'a\n\ncaf\u00e9 "q" \\ \t\nerr\npart',
        "at": "2026-01-02T03:04:05.678901+00:00",
    },
    {
        "seq": 7,
        "stream": "STDERR",
        "text": "old single line",
        "at": "2026-01-02T03:04:05.678901+00:00",
        "partial": True,
    },
    {
        "seq": 8,
        "stream": "STDOUT",
        "text": "old whole line",
        "at": "2026-01-02T03:04:05.678901+00:00",
        "partial": False,
    },
    {
        "seq": 9,
        "artifact": {
            "id": "0190a8b2-0000-7000-8000-000000000001",
            "name": "plot.png",
            "media_type": "image/png",
            "size_bytes": 1234,
        },
        "at": "2026-01-02T03:04:05.678901+00:00",
    },
    {"seq": 10, "status": "SUCCEEDED", "at": "2026-01-02T03:04:05.678901+00:00"},
]


def entries(at: datetime) -> list[Entry]:
    """The entries the old records were written from (Redis kept their times to the millisecond)."""
    return [
        StatusEvent(1, ExecutionStatus.RUNNING, at),
        LineBatch(2, at, "oooeO", TEXT),
        LineEvent(7, Stream.STDERR, "old single line", at, partial=True),
        LineEvent(8, Stream.STDOUT, "old whole line", at),
        ArtifactEvent(9, ARTIFACT, "plot.png", "image/png", 1234, at),
        StatusEvent(10, ExecutionStatus.SUCCEEDED, at),
    ]


def test_redis_entries_of_the_old_form_read_as_they_were_written() -> None:
    read = [from_fields(last, fields) for last, fields in OLD_REDIS]
    assert read == entries(AT_MS)
    assert [entry.last for entry in read] == [last for last, _ in OLD_REDIS]


def test_archived_records_of_the_old_form_read_as_they_were_written() -> None:
    read = [from_json(record) for record in OLD_ARCHIVE]
    assert read == entries(AT)
    assert [event.seq for event in unfold(read)] == list(range(1, 11))
    assert joined_output(read, Stream.STDOUT) == 'a\n\ncaf\u00e9 "q" \\ \t\npartold whole line\n'
    assert joined_output(read, Stream.STDERR) == "err\nold single line"


@pytest.mark.parametrize("entry", entries(AT), ids=lambda entry: type(entry).__name__)
def test_both_stores_hold_the_same_tagged_object(entry: Entry) -> None:
    [(field, encoded)] = to_fields(entry).items()
    assert field == "e"
    archived = json.loads(archived_json(entry))
    assert archived == json.loads(encoded)
    # executions/overview.py finds an archive's first line by these keys.
    assert ("codes" in archived or "stream" in archived) == isinstance(entry, LineBatch | LineEvent)
    assert from_fields(entry.last, {b"e": encoded}) == entry
    assert from_json(archived) == entry
