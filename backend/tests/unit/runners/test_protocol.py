"""The harness protocol (protocol.py): encoding, parsing and validation of its frames."""

from __future__ import annotations

import pytest

from podrun.runners import protocol
from podrun.runners.protocol import Exit, FrameError, Header


def test_output_frame_round_trips_every_byte_value() -> None:
    data = bytes(range(256)) + b"\x00\n\xff" * 100
    line = protocol.encode_frame("O", data)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    tag, payload = protocol.parse_frame(line)
    assert tag == "O"
    assert protocol.decode_b64(payload.decode("ascii")) == data


def test_frame_without_payload() -> None:
    assert protocol.encode_frame("C") == b"C\n"
    assert protocol.parse_frame(b"C\n") == ("C", b"")


def test_header_round_trips() -> None:
    header = Header(
        script="print('é')\n",
        stdin=b"\x00\xffline\n",
        stdin_eof=True,
        cpu_time_ms=1500,
        memory_bytes=None,
        processes=16,
        file_size_bytes=1024,
    )
    tag, payload = protocol.parse_frame(protocol.encode_frame("H", header.to_json()))
    assert tag == "H"
    assert Header.from_json(protocol.parse_json_payload(payload)) == header


def test_header_without_stdin() -> None:
    header = Header(script="", stdin=b"", stdin_eof=False, cpu_time_ms=1)
    assert header.to_json()["stdin"] is None
    assert Header.from_json(header.to_json()) == header


def test_exit_round_trips() -> None:
    exit_ = Exit(exit_code=None, signal=9, wall_ms=12, cpu_ms=3, peak_rss_kib=9000, error=None)
    tag, payload = protocol.parse_frame(protocol.encode_frame("X", exit_.to_json()))
    assert tag == "X"
    assert Exit.from_json(protocol.parse_json_payload(payload)) == exit_


@pytest.mark.parametrize(
    "line",
    [
        b"\n",
        b"OO aGk=\n",
        b"o aGk=\n",
        b"1 aGk=\n",
        b"\xff aGk=\n",
    ],
)
def test_malformed_frame_tags_are_rejected(line: bytes) -> None:
    with pytest.raises(FrameError):
        protocol.parse_frame(line)


def test_oversized_frame_is_rejected() -> None:
    with pytest.raises(FrameError):
        protocol.parse_frame(b"O " + b"A" * (protocol.MAX_FRAME_BYTES + 1))


@pytest.mark.parametrize("payload", ["not base64!", "aGk", "aGk=\x00"])
def test_invalid_base64_is_rejected(payload: str) -> None:
    with pytest.raises(FrameError):
        protocol.decode_b64(payload)


@pytest.mark.parametrize("payload", [b"{", b"\xff", b"[1, 2"])
def test_invalid_json_is_rejected(payload: bytes) -> None:
    with pytest.raises(FrameError):
        protocol.parse_json_payload(payload)


@pytest.mark.parametrize(
    "value",
    [
        [],
        {},
        {"script": 1, "cpu_time_ms": 1},
        {"script": "", "cpu_time_ms": 0},
        {"script": "", "cpu_time_ms": True},
        {"script": "", "cpu_time_ms": 1, "stdin": 5},
        {"script": "", "cpu_time_ms": 1, "stdin": "%%%"},
        {"script": "", "cpu_time_ms": 1, "memory_bytes": -1},
        {"script": "", "cpu_time_ms": 1, "stdin_eof": "yes"},
    ],
)
def test_invalid_headers_are_rejected(value: object) -> None:
    with pytest.raises(FrameError):
        Header.from_json(value)


@pytest.mark.parametrize(
    "value",
    [
        None,
        {"exit_code": 0, "signal": None, "wall_ms": -1, "cpu_ms": 0, "peak_rss_kib": 0},
        {"exit_code": "0", "signal": None, "wall_ms": 1, "cpu_ms": 0, "peak_rss_kib": 0},
        {"exit_code": 0, "signal": None, "wall_ms": 1, "cpu_ms": 0},
        {"exit_code": 0, "signal": None, "wall_ms": 1, "cpu_ms": 0, "peak_rss_kib": 0, "error": 7},
    ],
)
def test_invalid_exits_are_rejected(value: object) -> None:
    with pytest.raises(FrameError):
        Exit.from_json(value)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("data.csv", True),
        ("inputs.json", True),
        ("inputs/data.csv", True),
        ("outputs/data.csv", False),
        ("inputs/../main.py", False),
        ("inputs/", False),
        ("inputs/sub/data.csv", False),
        ("/tmp/data.csv", False),
    ],
)
def test_a_header_file_is_a_plain_name_or_one_in_inputs(name: str, valid: bool) -> None:
    payload = Header(script="", stdin=b"", stdin_eof=False, cpu_time_ms=1).to_json()
    payload["files"] = [{"name": name, "content": ""}]
    if valid:
        assert Header.from_json(payload).files == ((name, b""),)
    else:
        with pytest.raises(FrameError):
            Header.from_json(payload)
