"""Event logs as they were stored before one codec served both stores: read, never written.

Each old record becomes the tagged object of today's codec (`streams/events.py`), which then decodes it, so
there is one set of entry types. Redis entries of the old form go when their run's log expires; archived
records of the old form stay as long as their run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

# A line's stream in an old Redis entry.
_STREAMS = {"o": "STDOUT", "e": "STDERR"}


def from_fields(last: int, fields: dict[bytes, bytes]) -> dict[str, Any]:
    """Today's record of an old Redis entry (one field per attribute, its time in epoch milliseconds), given
    the seq of its last event (its id)."""
    old = {key.decode(): value.decode() for key, value in fields.items()}
    at = datetime.fromtimestamp(int(old["at"]) / 1000, tz=UTC)
    kind = old["k"]
    if kind == "b":
        return {"k": "b", "seq": last - len(old["c"]) + 1, "at": at, "codes": old["c"], "text": old["t"]}
    if kind == "l":  # one line per entry, as logs were written before batches
        return {
            "k": "l",
            "seq": last,
            "stream": _STREAMS[old["s"]],
            "text": old["t"],
            "at": at,
            "partial": bool(old.get("p")),
        }
    if kind == "a":
        return {
            "k": "a",
            "seq": last,
            "artifact_id": old["id"],
            "name": old["n"],
            "media_type": old["m"],
            "size_bytes": int(old["z"]),
            "at": at,
        }
    return {"k": "s", "seq": last, "status": old["st"], "at": at}


def from_json(data: dict[str, Any]) -> dict[str, Any]:
    """Today's record of an old archived record (no kind: its keys tell it; one record per line before batches)."""
    if "codes" in data:
        return {"k": "b", **data}
    if "status" in data:
        return {"k": "s", **data}
    if "artifact" in data:
        artifact = data["artifact"]
        return {
            "k": "a",
            "seq": data["seq"],
            "artifact_id": artifact["id"],
            "name": artifact["name"],
            "media_type": artifact["media_type"],
            "size_bytes": artifact["size_bytes"],
            "at": data["at"],
        }
    return {"k": "l", **data}
