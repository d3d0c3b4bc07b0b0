"""How `prun run` and `prun watch` write a run's events: as a terminal would, or as JSON lines."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from podrun_client.client import ArtifactCreated, Event, OutputChunk, StatusChange
from podrun_client.outcome import Outcome
from podrun_client.views import JsonView, TextView

from tests.unit.podrun_client.test_outcome import ended


def chunk(*lines: tuple[int, str, str, bool]) -> OutputChunk:
    return OutputChunk.model_validate(
        {
            "__typename": "OutputChunk",
            "lines": [
                {"seq": seq, "stream": stream, "text": text, "partial": partial, "at": "2026-01-01T00:00:00Z"}
                for seq, stream, text, partial in lines
            ],
        }
    )


def status(seq: int, name: str, **fields: Any) -> StatusChange:
    execution = ended(name, **fields).model_dump(by_alias=True, mode="json")
    return StatusChange.model_validate(
        {"__typename": "StatusChange", "seq": seq, "status": name, "execution": execution}
    )


EVENTS: list[Event] = [
    status(1, "STARTING"),
    status(2, "RUNNING"),
    chunk((3, "STDOUT", "Name: ", True), (4, "STDERR", "warning", False)),
    chunk((5, "STDOUT", "Ada", False), (6, "STDOUT", "x" * 10, True), (7, "STDOUT", "y", False)),
    chunk((8, "STDERR", "no newline", True)),
    status(9, "FAILED", exitCode=2),
]


def test_text_joins_partial_lines_and_keeps_the_streams_apart() -> None:
    out, err = io.BytesIO(), io.BytesIO()
    view = TextView(out, err, progress=False)
    for event in EVENTS:
        view.event(event)
    view.finished(Outcome(2))
    assert out.getvalue() == b"Name: Ada\n" + b"x" * 10 + b"y\n"
    assert err.getvalue() == b"warning\nno newline"


def test_progress_shows_until_the_output_begins_and_only_when_asked() -> None:
    out, err = io.BytesIO(), io.BytesIO()
    view = TextView(out, err, progress=True)
    view.submitted(ended("QUEUED"))
    view.event(EVENTS[0])
    view.event(EVENTS[1])
    view.event(chunk((3, "STDERR", "late", False)))
    assert err.getvalue() == (b"\r\x1b[2Kprun: queued 0193\r\x1b[2Kprun: starting 0193\r\x1b[2K" + b"late\n")
    quiet = io.BytesIO()
    silent = TextView(io.BytesIO(), quiet, progress=False)
    silent.submitted(ended("QUEUED"))
    silent.event(EVENTS[0])
    assert quiet.getvalue() == b""


def test_messages_go_to_stderr() -> None:
    out, err = io.BytesIO(), io.BytesIO()
    TextView(out, err, progress=False).finished(Outcome(130, "cancelled"))
    assert (out.getvalue(), err.getvalue()) == (b"", b"prun: cancelled\n")


def test_json_lines_are_shaped_like_the_api() -> None:
    out, err = io.BytesIO(), io.BytesIO()
    view = JsonView(out, err)
    view.submitted(ended("QUEUED"))
    for event in EVENTS:
        view.event(event)
    view.finished(Outcome(2))
    lines = [json.loads(line) for line in out.getvalue().decode().splitlines()]
    assert lines[0]["submitExecution"]["status"] == "QUEUED"
    assert lines[0]["submitExecution"]["limits"]["memoryMiB"] == 256
    assert lines[3]["executionEvents"] == {
        "__typename": "OutputChunk",
        "lines": [
            {"seq": 3, "stream": "STDOUT", "text": "Name: ", "partial": True, "at": "2026-01-01T00:00:00Z"},
            {"seq": 4, "stream": "STDERR", "text": "warning", "partial": False, "at": "2026-01-01T00:00:00Z"},
        ],
    }
    assert lines[-1]["executionEvents"]["execution"]["exitCode"] == 2
    assert err.getvalue() == b""


def test_a_saved_artifact_is_told_on_a_terminal_only() -> None:
    event = ArtifactCreated.model_validate(
        {
            "__typename": "ArtifactCreated",
            "seq": 4,
            "artifact": {
                "id": "a1",
                "name": "figure.png",
                "mediaType": "image/png",
                "sizeBytes": 1234,
                "url": "/artifacts/a1",
                "createdAt": "2026-01-01T00:00:00Z",
            },
        }
    )
    shown = []
    for progress in (True, False):
        out, err = io.BytesIO(), io.BytesIO()
        view = TextView(out, err, progress=progress)
        view.event(event)
        view.saved(event, Path("out/figure.png"))
        shown.append((out.getvalue(), err.getvalue()))
    assert shown == [(b"", b"[artifact figure.png, 1234 bytes]\n[saved as out/figure.png]\n"), (b"", b"")]
