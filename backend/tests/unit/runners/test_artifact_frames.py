"""The host's side of the artifact frames: what it accepts, and what it refuses as a protocol error."""

from __future__ import annotations

import base64
import json

import pytest

from podrun.runners import protocol
from podrun.runners.artifact_frames import ArtifactFrames
from podrun.runners.base import ArtifactCaps, ArtifactOutput

CAPS = ArtifactCaps(count=4, total_bytes=1000)


def announce(**fields: object) -> bytes:
    return json.dumps({"name": "a.png", "media_type": "image/png", "size": 3, "refused": False, **fields}).encode()


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def test_an_artifact_is_assembled_from_its_pieces() -> None:
    frames = ArtifactFrames(CAPS)
    assert frames.announce(announce(size=5)) is None
    assert frames.data(b64(b"ab")) is None
    assert frames.data(b64(b"cde")) == ArtifactOutput("a.png", "image/png", b"abcde", 5)
    assert frames.announce(announce(name="b.csv", media_type="text/csv", size=0)) == ArtifactOutput(
        "b.csv", "text/csv", b"", 0
    )


def test_a_refused_artifact_has_no_data_and_keeps_its_claimed_size() -> None:
    refused = ArtifactFrames(CAPS).announce(announce(size=10**9, refused=True))
    assert refused == ArtifactOutput("a.png", "image/png", b"", 10**9, refused=True)


@pytest.mark.parametrize(
    "payload",
    [
        announce(name="../a.png"),
        announce(name="a.png", media_type="text/html"),
        announce(name="a.html", media_type="text/html"),
        announce(name="main.py", media_type="text/plain"),
        announce(size=-1),
        announce(size=True),
        announce(size=2000),  # past the caps it was given, yet not refused
        announce(refused="no"),
        b"[]",
        b"not json",
    ],
)
def test_a_malformed_announcement_is_a_frame_error(payload: bytes) -> None:
    with pytest.raises(protocol.FrameError):
        ArtifactFrames(CAPS).announce(payload)


def test_data_out_of_place_or_longer_than_announced_is_a_frame_error() -> None:
    with pytest.raises(protocol.FrameError):
        ArtifactFrames(CAPS).data(b64(b"x"))
    frames = ArtifactFrames(CAPS)
    frames.announce(announce(size=2))
    with pytest.raises(protocol.FrameError):
        frames.data(b64(b"xyz"))
    frames = ArtifactFrames(CAPS)
    frames.announce(announce(size=2))
    with pytest.raises(protocol.FrameError):
        frames.announce(announce())
    with pytest.raises(protocol.FrameError):
        frames.data(b"not base64!")


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("figure-1.png", "image/png"),
        ("Plot.SVG", "image/svg+xml"),
        ("data.csv", "text/csv"),
        ("x.json", "application/json"),
        ("notes.txt", "text/plain"),
        ("page.html", None),
        (".hidden.txt", None),
        ("a/b.txt", None),
        ("outputs", None),
        ("x" * 101 + ".txt", None),
    ],
)
def test_artifact_types_come_from_plain_names_only(name: str, media_type: str | None) -> None:
    assert protocol.artifact_media_type(name) == media_type


def test_the_header_carries_input_files_and_refuses_paths() -> None:
    header = protocol.Header(script="", stdin=b"", stdin_eof=True, cpu_time_ms=1, files=(("a.txt", b"\x00\xff"),))
    assert protocol.Header.from_json(header.to_json()) == header
    for name in ("../a.txt", "main.py", ""):
        with pytest.raises(protocol.FrameError):
            protocol.Header.from_json({**header.to_json(), "files": [{"name": name, "content": ""}]})
    with pytest.raises(protocol.FrameError):
        protocol.Header.from_json({**header.to_json(), "files": [{"name": "a", "content": ""}] * 2})
