"""The events of one execution's log: output lines, artifacts and status changes, numbered by `seq` from 1.

What the log stores (a Redis stream entry, an archived record) is an `Entry`: a status change, an artifact,
or a `LineBatch` of consecutive lines encoded once, so a line costs its bytes and not an object, an entry and
a record of its own. Readers see `Event`s: a batch unfolds into its lines, each with its own seq. Logs written
before batches hold one `LineEvent` per entry; they are read (and restored) as they are.

One codec serves both stores: an entry is a msgspec Struct tagged by kind, stored as the same JSON object in a
Redis stream entry and in the archive. What older code wrote is read by `legacy_events`.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import accumulate
from typing import Any
from uuid import UUID

import msgspec

from podrun.core.output import Stream
from podrun.core.statuses import ExecutionStatus
from podrun.streams import legacy_events

# What an OutputLine adds to its text in a WebSocket message, at most: the other fields and the punctuation.
LINE_ENVELOPE_BYTES = 128
# A batch holds at most this many lines and about this many characters of text (a longer single line, up to
# the 64 KiB a line may have, gets a batch of its own): readers unfold a bounded number of lines per entry.
BATCH_LINES = 1000
BATCH_CHARS = 64 * 1024
# A line's stream and partial flag as one character of a batch's `codes`.
_CODES = {
    (Stream.STDOUT, False): "o",
    (Stream.STDOUT, True): "O",
    (Stream.STDERR, False): "e",
    (Stream.STDERR, True): "E",
}
_LINE_OF_CODE = {code: key for key, code in _CODES.items()}


class _Stored(msgspec.Struct, frozen=True, tag_field="k", omit_defaults=True):
    """What both stores hold: the entry as one JSON object tagged by kind ("k")."""


class LineEvent(_Stored, frozen=True, tag="l"):
    """One line of output (without its newline), or a piece of a long or partial line.

    `partial` is true when the text did not end with a newline (a flushed partial line or a piece
    of a split one): the next line of the same stream continues it.
    """

    seq: int
    stream: Stream
    text: str
    at: datetime
    partial: bool = False

    @property
    def last(self) -> int:
        """The seq of the entry's last event (this one)."""
        return self.seq

    @property
    def wire_bytes(self) -> int:
        """An upper bound of this line's size as JSON in a message (two string checks for almost every line)."""
        return _wire_bytes(self.text)


class StatusEvent(_Stored, frozen=True, tag="s"):
    """The execution moved to `status`."""

    seq: int
    status: ExecutionStatus
    at: datetime

    @property
    def last(self) -> int:
        """The seq of the entry's last event (this one)."""
        return self.seq


class ArtifactEvent(_Stored, frozen=True, tag="a"):
    """The script produced the artifact `artifact_id` (stored in PostgreSQL) at this point of its output."""

    seq: int
    artifact_id: UUID
    name: str
    media_type: str
    size_bytes: int
    at: datetime

    @property
    def last(self) -> int:
        """The seq of the entry's last event (this one)."""
        return self.seq


class LineBatch(_Stored, frozen=True, tag="b"):
    """Consecutive lines written at one moment, seqs `seq` to `last`, kept in their stored form.

    `codes` has one character per line (o, e: stdout, stderr; upper case when partial) and `text` the
    lines' texts joined by newlines, which no line's text contains.
    """

    seq: int
    at: datetime
    codes: str
    text: str

    @property
    def last(self) -> int:
        """The seq of the batch's last line."""
        return self.seq + len(self.codes) - 1

    def lines(self) -> list[LineEvent]:
        """The batch's lines, one event each."""
        at = self.at
        kinds = map(_LINE_OF_CODE.__getitem__, self.codes)
        lines = zip(range(self.seq, self.last + 1), kinds, self.text.split("\n"), strict=True)
        return [LineEvent(seq, stream, text, at, partial) for seq, (stream, partial), text in lines]

    def column(self, attribute: str) -> list[Any] | None:
        """One attribute of every line, as `lines()` would give it, without an object per line (None: no such
        attribute)."""
        count = len(self.codes)
        if attribute == "seq":
            return list(range(self.seq, self.seq + count))
        if attribute == "text":
            return self.text.split("\n")
        if attribute == "at":
            return [self.at] * count
        if attribute == "stream":
            return list(map(_STREAM_OF_CODE.__getitem__, self.codes))
        if attribute == "partial":
            return list(map(str.isupper, self.codes))
        return None

    @property
    def wire_bytes(self) -> int:
        """The sum of its lines' `wire_bytes` (per batch, not per line, for a batch of printable ASCII)."""
        text = self.text
        count = len(self.codes)
        if text.isascii() and text.replace("\n", "").isprintable():
            return 2 * (len(text) - count + 1) + count * (2 + LINE_ENVELOPE_BYTES)
        return sum(map(_wire_bytes, text.split("\n")))

    def fitting(self, room: int) -> int:
        """How many of its first lines' `wire_bytes` add up to at most `room`."""
        texts = self.text.split("\n")
        if not (self.text.isascii() and self.text.replace("\n", "").isprintable()):
            return bisect_right(list(accumulate(map(_wire_bytes, texts))), room)
        # Printable ASCII: the first k lines take 2 * (their characters) + k * (2 + LINE_ENVELOPE_BYTES).
        characters = list(accumulate(map(len, texts)))
        return bisect_right(
            range(1, len(texts) + 1), room, key=lambda k: 2 * characters[k - 1] + k * (2 + LINE_ENVELOPE_BYTES)
        )

    def split(self, count: int) -> tuple[LineBatch, LineBatch]:
        """Its first `count` lines and the rest, as two batches (0 < count < its lines)."""
        texts = self.text.split("\n")
        head = LineBatch(self.seq, self.at, self.codes[:count], "\n".join(texts[:count]))
        return head, LineBatch(self.seq + count, self.at, self.codes[count:], "\n".join(texts[count:]))

    def output(self, stream: Stream) -> tuple[str, ...]:
        """The text this batch adds to `stream`, newlines restored, in pieces to be joined."""
        code = _CODES[stream, False]
        if self.codes.count(code) == len(self.codes):  # the common case: whole lines of one stream
            return self.text, "\n"  # the stored text itself, not a copy: a flood's output is joined once
        if code not in self.codes and code.upper() not in self.codes:
            return ()
        return (
            "".join(
                text if line_code.isupper() else text + "\n"
                for line_code, text in zip(self.codes, self.text.split("\n"), strict=True)
                if line_code.lower() == code
            ),
        )


Event = LineEvent | StatusEvent | ArtifactEvent
Entry = LineBatch | Event
_STREAM_OF_CODE = {code: stream for code, (stream, _) in _LINE_OF_CODE.items()}


def _wire_bytes(text: str) -> int:
    if text.isascii() and text.isprintable():  # at most every character escaped with one backslash
        return 2 * len(text) + 2 + LINE_ENVELOPE_BYTES
    return len(json.dumps(text)) + LINE_ENVELOPE_BYTES


class Lines:
    """Consecutive lines as one message sends them: stored batches (and single lines of older logs) kept whole.

    Iterated, it gives one `LineEvent` per line; `column` gives one attribute of every line without them, which
    is how the subscription's lines are completed (graphql/flat_objects.py).
    """

    __slots__ = ("pieces",)

    def __init__(self, pieces: list[LineBatch | LineEvent]) -> None:
        self.pieces = pieces

    def __len__(self) -> int:
        return sum(len(piece.codes) if isinstance(piece, LineBatch) else 1 for piece in self.pieces)

    def __iter__(self) -> Iterator[LineEvent]:
        for piece in self.pieces:
            if isinstance(piece, LineBatch):
                yield from piece.lines()
            else:
                yield piece

    def column(self, attribute: str) -> list[Any] | None:
        """One attribute of every line, in order (None: no such attribute)."""
        values: list[Any] = []
        for piece in self.pieces:
            if isinstance(piece, LineBatch):
                column = piece.column(attribute)
                if column is None:
                    return None
                values.extend(column)
            elif attribute in LineEvent.__struct_fields__:
                values.append(getattr(piece, attribute))
            else:
                return None
        return values


def batch_lines(seq: int, at: datetime, runs: Iterable[tuple[Stream, list[str], bool]]) -> list[LineBatch]:
    """Runs of lines given as (stream, texts, partial), numbered from `seq`, in batches within BATCH_LINES lines
    and BATCH_CHARS characters of text. The work is per run and per batch, never per line."""
    batches: list[LineBatch] = []
    codes: list[str] = []
    texts: list[str] = []
    size = 0
    for stream, run, partial in runs:
        code = _CODES[stream, partial]
        start = 0
        while start < len(run):
            piece = run[start : start + BATCH_LINES - len(texts)]
            sizes = list(accumulate(map(len, piece)))
            fitting = bisect_right(sizes, BATCH_CHARS - size)
            if fitting == 0 and not texts:
                fitting = 1  # a line longer than the bound gets a batch of its own
            texts.extend(piece[:fitting])
            codes.append(code * fitting)
            size += sizes[fitting - 1] if fitting else 0
            start += fitting
            if len(texts) == BATCH_LINES or fitting < len(piece):
                batches.append(LineBatch(seq, at, "".join(codes), "\n".join(texts)))
                seq += len(texts)
                codes, texts, size = [], [], 0
    if texts:
        batches.append(LineBatch(seq, at, "".join(codes), "\n".join(texts)))
    return batches


def unfold(entries: Iterable[Entry]) -> Iterator[Event]:
    """The events of stored entries, in order."""
    for entry in entries:
        if isinstance(entry, LineBatch):
            yield from entry.lines()
        else:
            yield entry


def is_terminal(entry: Entry) -> bool:
    """Whether this is the last event of a log."""
    return isinstance(entry, StatusEvent) and entry.status.terminal


# A Redis stream entry holds one field: the entry's JSON, the same object the archive keeps.
_FIELD = "e"
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Entry)


def to_fields(entry: Entry) -> dict[str, bytes]:
    """The Redis stream entry for an entry (the seq of its last event is the entry id)."""
    return {_FIELD: _ENCODER.encode(entry)}


def from_fields(last: int, fields: dict[bytes, bytes]) -> Entry:
    """The entry a Redis stream entry holds, given the seq of its last event (its id)."""
    encoded = fields.get(_FIELD.encode())
    if encoded is None:
        return _convert(legacy_events.from_fields(last, fields))
    entry: Entry = _DECODER.decode(encoded)
    return entry


def archived_json(entry: Entry) -> str:
    """The archived (PostgreSQL JSONB) form of an entry, as JSON text: the object a Redis stream entry holds."""
    return _ENCODER.encode(entry).decode()


def from_json(data: dict[str, Any]) -> Entry:
    """The entry an archived record holds, of today's form or an older one."""
    return _convert(data if "k" in data else legacy_events.from_json(data))


def _convert(record: dict[str, Any]) -> Entry:
    entry: Entry = msgspec.convert(record, Entry)
    return entry


def joined_output(entries: Iterable[Entry], stream: Stream) -> str:
    """The text a stream carried, newlines restored."""
    return "".join(output_pieces(entries, stream))


def output_pieces(entries: Iterable[Entry], stream: Stream) -> Iterator[str]:
    """The text a stream carried in pieces (mostly the stored texts themselves, not copies), to be joined."""
    for entry in entries:
        if isinstance(entry, LineBatch):
            yield from entry.output(stream)
        elif isinstance(entry, LineEvent) and entry.stream is stream:
            yield entry.text
            if not entry.partial:
                yield "\n"
