"""The harness protocol, defined once: frames, the header, the exit record, the sandbox's names.

Stdlib only: this module is shipped beside the harness into every sandbox (bound read-only next to it
by the local runner, a key of the pod's ConfigMap on Kubernetes) and imported there by the harness,
while the host imports it as `podrun.runners.protocol` to speak to it. The harness's own stdin and
stdout carry line-based text frames (on Kubernetes its stdout is the pod's only log stream), one frame
per line, a tag, a space, a payload:

    runner -> harness (harness stdin)
        H <json>      header, exactly once, first: {"script": str, "stdin": base64 | null,
                      "stdin_eof": bool, "cpu_time_ms": int, "memory_bytes": int | null,
                      "processes": int | null, "file_size_bytes": int | null,
                      "files": [{"name": str, "content": base64}], "max_artifacts": int,
                      "max_artifact_bytes": int, "kernel": bool}
                      (a null limit means "enforced elsewhere, for example by a cgroup"; files are
                      placed read-only beside the script, those named "inputs/<name>" in a read-only
                      /tmp/inputs, a tool's file fields; the artifact caps are per run)
        I <base64>    bytes for the script's stdin
        C             close the script's stdin (EOF); so does the end of the harness's stdin
                      (ignored by a kernel: its stdin is the kernel's, for all its cells)
        K <json>      a kernel's cell (a header with "kernel": true has no script): {"code": str,
                      "number": int, "wall_time_ms": int, "cpu_time_ms": int, "max_artifacts": int,
                      "max_artifact_bytes": int}; sent only when no cell runs
        T             interrupt the running cell (KeyboardInterrupt in it); ignored when none runs

    harness -> runner (harness stdout)
        R <json>      ready, before the header is read: {"protocol": 1, "pid": int}
        S             the header has arrived whole and the script starts now (a pod's log thus
                      says whether its script ever started: a Kubernetes warm pod gets its
                      header over the attach stream, which a dying worker may leave unsent)
        O <base64>    a chunk of the script's stdout, sent as soon as it was read
        E <base64>    a chunk of the script's stderr
        A <json>      an artifact (a figure at plt.show() or exit, or a file in /tmp/outputs after
                      the exit): {"name": str, "media_type": str, "size": int, "refused": bool},
                      followed by its bytes in ceil(size / 48 KiB) `B <base64>` frames; a refused
                      one (past the caps) has no B frames, and no artifact follows it
        B <base64>    a piece of the artifact just announced
        X <json>      the end, always last: {"exit_code": int | null, "signal": int | null,
                      "wall_ms": int, "cpu_ms": int, "peak_rss_kib": int, "error": str | null,
                      "died_of": "MEMORY" | null}  (died_of: the script ended by an uncaught
                      MemoryError, a memory limit the harness's rlimit enforced; absent before)
                      A kernel sends one X per cell (the cell's exit code, 1 for an uncaught
                      exception, signal 2 when interrupted; died_of "WALL_TIME" or "CPU_TIME" when
                      the harness interrupted it for its limits; "kernel_ended": true when the
                      kernel's process died with it), and a last one when the kernel ends.


Malformed runner frames end the run with an `error` in the X frame.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass
from typing import Any

PROTOCOL_VERSION = 1
# The sandbox's /tmp is its own private tmpfs.
SANDBOX_TMP = "/tmp"  # noqa: S108
# A header carries the script and the initial stdin, both capped far below this by the API.
MAX_FRAME_BYTES = 16 * 1024 * 1024
# Where a runtime's packages (the scientific runtime's numpy, pandas, ...) are bound read-only, if it has any:
# their site-packages, and matplotlib's font list made at install, which each run gets a copy of.
PACKAGES_DIR = "/opt/podrun/packages"
MATPLOTLIB_CACHE = "matplotlib"
# An artifact travels in B frames of at most this many bytes (about 64 KiB of base64).
ARTIFACT_CHUNK = 48 * 1024
# The artifact types there are, by file extension; other files are not sent.
ARTIFACT_TYPES = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".csv": "text/csv",
    ".json": "application/json",
    ".txt": "text/plain",
}
# Input files and artifacts: a plain name, never a path.
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
RESERVED_NAMES = frozenset({"main.py", "outputs"})
# A tool's file fields are placed in this directory of the working directory (files named "inputs/<name>").
INPUTS_DIR = "inputs"
# The sandbox's whole environment (it is the environment of its PID 1, which a script can read):
# nothing of the worker's, the same in a bubblewrap sandbox and in a pod.
SANDBOX_ENV = {
    "HOME": SANDBOX_TMP,
    "LANG": "C.UTF-8",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
}
# The harness and the modules it imports: shipped together into one directory of every sandbox (bundle.py),
# the harness (run as __main__) first; a script's process forgets them all before its first line.
HARNESS_MODULES = ("harness", "harness_child", "harness_artifacts", "harness_kernel", "harness_cells", "protocol")
# The frames' tags.
HEADER, INPUT, CLOSE, CELL, INTERRUPT = "H", "I", "C", "K", "T"
READY, STARTED, STDOUT, STDERR, ARTIFACT, ARTIFACT_DATA, EXIT = "R", "S", "O", "E", "A", "B", "X"
# What an exit record's `died_of` may name: a limit the harness enforced and the script died of.
DIED_OF_MEMORY = "MEMORY"
# ... and what a kernel's harness interrupts a cell for.
DIED_OF_WALL_TIME, DIED_OF_CPU_TIME = "WALL_TIME", "CPU_TIME"
DIED_OF = frozenset({DIED_OF_MEMORY, DIED_OF_WALL_TIME, DIED_OF_CPU_TIME})


class FrameError(ValueError):
    """A frame that does not follow the protocol."""


@dataclass(frozen=True)
class Header:
    """What the runner asks the harness to run, and under which limits."""

    script: str
    stdin: bytes
    stdin_eof: bool
    cpu_time_ms: int
    memory_bytes: int | None = None
    processes: int | None = None
    file_size_bytes: int | None = None
    # (name, content) of the files placed read-only beside the script.
    files: tuple[tuple[str, bytes], ...] = ()
    max_artifacts: int = 0
    max_artifact_bytes: int = 0
    # A kernel: no script; cells come in K frames, and the harness serves them until it is stopped.
    kernel: bool = False

    def to_json(self) -> dict[str, Any]:
        """The header's JSON payload."""
        return {
            "script": self.script,
            "stdin": base64.b64encode(self.stdin).decode("ascii") if self.stdin else None,
            "stdin_eof": self.stdin_eof,
            "cpu_time_ms": self.cpu_time_ms,
            "memory_bytes": self.memory_bytes,
            "processes": self.processes,
            "file_size_bytes": self.file_size_bytes,
            "files": [{"name": name, "content": base64.b64encode(data).decode("ascii")} for name, data in self.files],
            "max_artifacts": self.max_artifacts,
            "max_artifact_bytes": self.max_artifact_bytes,
            "kernel": self.kernel,
        }

    @classmethod
    def from_json(cls, value: object) -> Header:
        """Parse and validate a header payload."""
        if not isinstance(value, dict):
            raise FrameError("header is not an object")
        script = value.get("script")
        stdin = value.get("stdin")
        stdin_eof = value.get("stdin_eof", False)
        if not isinstance(script, str) or not isinstance(stdin_eof, bool):
            raise FrameError("header has no script")
        if stdin is not None and not isinstance(stdin, str):
            raise FrameError("header stdin is not base64 text")
        kernel = value.get("kernel", False)
        if not isinstance(kernel, bool):
            raise FrameError("header kernel is not a boolean")
        return cls(
            script=script,
            stdin=decode_b64(stdin) if stdin else b"",
            stdin_eof=stdin_eof,
            cpu_time_ms=_positive_int(value.get("cpu_time_ms"), "cpu_time_ms"),
            memory_bytes=_optional_positive_int(value.get("memory_bytes"), "memory_bytes"),
            processes=_optional_positive_int(value.get("processes"), "processes"),
            file_size_bytes=_optional_positive_int(value.get("file_size_bytes"), "file_size_bytes"),
            files=_files(value.get("files", [])),
            max_artifacts=_non_negative_int(value.get("max_artifacts", 0), "max_artifacts"),
            max_artifact_bytes=_non_negative_int(value.get("max_artifact_bytes", 0), "max_artifact_bytes"),
            kernel=kernel,
        )


@dataclass(frozen=True)
class Cell:
    """One piece of code for a kernel, and the limits it runs under."""

    code: str
    number: int
    wall_time_ms: int
    cpu_time_ms: int
    max_artifacts: int = 0
    max_artifact_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        """The cell frame's JSON payload."""
        return {
            "code": self.code,
            "number": self.number,
            "wall_time_ms": self.wall_time_ms,
            "cpu_time_ms": self.cpu_time_ms,
            "max_artifacts": self.max_artifacts,
            "max_artifact_bytes": self.max_artifact_bytes,
        }

    @classmethod
    def from_json(cls, value: object) -> Cell:
        """Parse and validate a cell payload."""
        if not isinstance(value, dict) or not isinstance(value.get("code"), str):
            raise FrameError("cell has no code")
        return cls(
            code=value["code"],
            number=_positive_int(value.get("number"), "number"),
            wall_time_ms=_positive_int(value.get("wall_time_ms"), "wall_time_ms"),
            cpu_time_ms=_positive_int(value.get("cpu_time_ms"), "cpu_time_ms"),
            max_artifacts=_non_negative_int(value.get("max_artifacts", 0), "max_artifacts"),
            max_artifact_bytes=_non_negative_int(value.get("max_artifact_bytes", 0), "max_artifact_bytes"),
        )


def _files(value: object) -> tuple[tuple[str, bytes], ...]:
    if not isinstance(value, list):
        raise FrameError("header files is not a list")
    files: list[tuple[str, bytes]] = []
    for item in value:
        name = item.get("name") if isinstance(item, dict) else None
        content = item.get("content") if isinstance(item, dict) else None
        if not isinstance(name, str) or not is_input_path(name) or not isinstance(content, str):
            raise FrameError("header has an invalid file")
        files.append((name, decode_b64(content)))
    if len({name for name, _ in files}) != len(files):
        raise FrameError("header names a file twice")
    return tuple(files)


def is_file_name(name: str) -> bool:
    """Whether `name` may name an input file or an artifact: a plain name, no path, nothing the harness uses."""
    return FILE_NAME.fullmatch(name) is not None and name not in RESERVED_NAMES


def is_input_path(path: str) -> bool:
    """Whether `path` may name a file placed for the script: a file name, or "inputs/" and a file name."""
    directory, slash, name = path.rpartition("/")
    return is_file_name(name) and (not slash or directory == INPUTS_DIR)


def artifact_media_type(name: str) -> str | None:
    """The media type of an artifact named `name`, by its extension; None for names that are no artifact."""
    if not is_file_name(name):
        return None
    return ARTIFACT_TYPES.get(os.path.splitext(name)[1].lower())


@dataclass(frozen=True)
class Exit:
    """How the script ended and what it used, as the harness saw it."""

    exit_code: int | None
    signal: int | None
    wall_ms: int
    cpu_ms: int
    peak_rss_kib: int
    error: str | None = None
    # The limit the script died of inside the sandbox, where only the harness could see it (DIED_OF).
    died_of: str | None = None
    # A kernel's cell whose kernel process died with it (the kernel is over).
    kernel_ended: bool = False

    def to_json(self) -> dict[str, Any]:
        """The exit frame's JSON payload."""
        return {
            "exit_code": self.exit_code,
            "signal": self.signal,
            "wall_ms": self.wall_ms,
            "cpu_ms": self.cpu_ms,
            "peak_rss_kib": self.peak_rss_kib,
            "error": self.error,
            "died_of": self.died_of,
            "kernel_ended": self.kernel_ended,
        }

    @classmethod
    def from_json(cls, value: object) -> Exit:
        """Parse and validate an exit payload."""
        if not isinstance(value, dict):
            raise FrameError("exit is not an object")
        error = value.get("error")
        if error is not None and not isinstance(error, str):
            raise FrameError("exit error is not text")
        died_of = value.get("died_of")
        if died_of is not None and died_of not in DIED_OF:
            raise FrameError("exit names an unknown limit")
        kernel_ended = value.get("kernel_ended", False)
        if not isinstance(kernel_ended, bool):
            raise FrameError("exit kernel_ended is not a boolean")
        return cls(
            exit_code=_optional_int(value.get("exit_code"), "exit_code"),
            signal=_optional_int(value.get("signal"), "signal"),
            wall_ms=_non_negative_int(value.get("wall_ms"), "wall_ms"),
            cpu_ms=_non_negative_int(value.get("cpu_ms"), "cpu_ms"),
            peak_rss_kib=_non_negative_int(value.get("peak_rss_kib"), "peak_rss_kib"),
            error=error,
            died_of=died_of,
            kernel_ended=kernel_ended,
        )


def _optional_int(value: object, name: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise FrameError(f"{name} is not an integer")
    return value


def _non_negative_int(value: object, name: str) -> int:
    number = _optional_int(value, name)
    if number is None or number < 0:
        raise FrameError(f"{name} is not a non-negative integer")
    return number


def _positive_int(value: object, name: str) -> int:
    number = _optional_int(value, name)
    if number is None or number <= 0:
        raise FrameError(f"{name} is not a positive integer")
    return number


def _optional_positive_int(value: object, name: str) -> int | None:
    return None if value is None else _positive_int(value, name)


def decode_b64(text: str) -> bytes:
    """Strict base64 decoding; anything else is a frame error."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FrameError("invalid base64") from exc


def encode_frame(tag: str, payload: bytes | dict[str, Any] | None = None) -> bytes:
    """One frame as a line: bytes are base64-encoded, dicts JSON-encoded (ASCII only)."""
    if payload is None:
        return tag.encode("ascii") + b"\n"
    if isinstance(payload, bytes):
        body = base64.b64encode(payload)
    else:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return tag.encode("ascii") + b" " + body + b"\n"


def parse_frame(line: bytes) -> tuple[str, bytes]:
    """Split one line into its tag and raw payload (base64 or JSON text, not yet decoded)."""
    line = line.rstrip(b"\n")
    if len(line) > MAX_FRAME_BYTES:
        raise FrameError("frame too long")
    tag, _, payload = line.partition(b" ")
    if len(tag) != 1 or not tag.isalpha() or not tag.isupper():
        raise FrameError("invalid frame tag")
    return tag.decode("ascii"), payload


def parse_json_payload(payload: bytes) -> object:
    """Decode a JSON payload, turning any failure into a frame error."""
    try:
        return json.loads(payload.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FrameError("invalid JSON payload") from exc
