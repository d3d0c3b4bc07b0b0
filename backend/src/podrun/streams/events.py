"""The events of one execution's log: output lines, artifacts and status changes, numbered by `seq` from 1."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import Any
from uuid import UUID

from podrun.core.output import Stream
from podrun.core.statuses import ExecutionStatus

# What an OutputLine adds to its text in a WebSocket message, at most: the other fields and the punctuation.
LINE_ENVELOPE_BYTES = 128


@dataclass(frozen=True)
class LineEvent:
    """One line of output (without its newline), or a piece of a long or partial line.

    `partial` is true when the text did not end with a newline (a flushed partial line or a piece
    of a split one): the next line of the same stream continues it.
    """

    seq: int
    stream: Stream
    text: str
    at: datetime
    partial: bool = False

    @cached_property
    def wire_bytes(self) -> int:
        """An upper bound of this line's size as JSON in a message (computed once, shared by every watcher)."""
        text = self.text
        if text.isascii() and text.isprintable():  # at most every character escaped with one backslash
            return 2 * len(text) + 2 + LINE_ENVELOPE_BYTES
        return len(json.dumps(text)) + LINE_ENVELOPE_BYTES


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """The execution moved to `status`."""

    seq: int
    status: ExecutionStatus
    at: datetime


@dataclass(frozen=True, slots=True)
class ArtifactEvent:
    """The script produced the artifact `artifact_id` (stored in PostgreSQL) at this point of its output."""

    seq: int
    artifact_id: UUID
    name: str
    media_type: str
    size_bytes: int
    at: datetime


Event = LineEvent | StatusEvent | ArtifactEvent


def is_terminal(event: Event) -> bool:
    """Whether this is the last event of a log."""
    return isinstance(event, StatusEvent) and event.status.terminal


def to_fields(event: Event) -> dict[str, str]:
    """The Redis stream entry for an event (its seq is the entry id)."""
    at = str(int(event.at.timestamp() * 1000))
    if isinstance(event, LineEvent):
        stream = "o" if event.stream is Stream.STDOUT else "e"
        return {"k": "l", "s": stream, "t": event.text, "at": at, "p": "1" if event.partial else ""}
    if isinstance(event, ArtifactEvent):
        return {
            "k": "a",
            "id": str(event.artifact_id),
            "n": event.name,
            "m": event.media_type,
            "z": str(event.size_bytes),
            "at": at,
        }
    return {"k": "s", "st": event.status.value, "at": at}


@lru_cache(maxsize=4096)
def _moment(epoch_ms: int) -> datetime:
    # The lines of one write share a timestamp: one object for all of them, made once.
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


def from_fields(seq: int, fields: dict[bytes, bytes]) -> Event:
    """The event a Redis stream entry holds."""
    at = _moment(int(fields[b"at"]))
    if fields[b"k"] == b"l":
        stream = Stream.STDOUT if fields[b"s"] == b"o" else Stream.STDERR
        return LineEvent(seq=seq, stream=stream, text=fields[b"t"].decode(), at=at, partial=bool(fields.get(b"p")))
    if fields[b"k"] == b"a":
        return ArtifactEvent(
            seq=seq,
            artifact_id=UUID(fields[b"id"].decode()),
            name=fields[b"n"].decode(),
            media_type=fields[b"m"].decode(),
            size_bytes=int(fields[b"z"]),
            at=at,
        )
    return StatusEvent(seq=seq, status=ExecutionStatus(fields[b"st"].decode()), at=at)


def to_json(event: Event) -> dict[str, Any]:
    """The archived (PostgreSQL JSONB) form of an event."""
    at = event.at.isoformat()
    if isinstance(event, LineEvent):
        return {"seq": event.seq, "stream": event.stream.value, "text": event.text, "at": at, "partial": event.partial}
    if isinstance(event, ArtifactEvent):
        artifact = {
            "id": str(event.artifact_id),
            "name": event.name,
            "media_type": event.media_type,
            "size_bytes": event.size_bytes,
        }
        return {"seq": event.seq, "artifact": artifact, "at": at}
    return {"seq": event.seq, "status": event.status.value, "at": at}


@lru_cache(maxsize=4096)
def _moment_of(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def from_json(data: dict[str, Any]) -> Event:
    """The event an archived entry holds."""
    at = _moment_of(data["at"])
    if "status" in data:
        return StatusEvent(seq=data["seq"], status=ExecutionStatus(data["status"]), at=at)
    if "artifact" in data:
        artifact = data["artifact"]
        return ArtifactEvent(
            seq=data["seq"],
            artifact_id=UUID(artifact["id"]),
            name=artifact["name"],
            media_type=artifact["media_type"],
            size_bytes=artifact["size_bytes"],
            at=at,
        )
    return LineEvent(
        seq=data["seq"], stream=Stream(data["stream"]), text=data["text"], at=at, partial=data.get("partial", False)
    )


def joined_output(events: list[Event], stream: Stream) -> str:
    """The text a stream carried, newlines restored."""
    return "".join(
        event.text if event.partial else event.text + "\n"
        for event in events
        if isinstance(event, LineEvent) and event.stream is stream
    )
