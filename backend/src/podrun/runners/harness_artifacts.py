"""The artifacts a run sends: figures the script process hands over, and the files it left in /tmp/outputs.

Stdlib only, shipped beside harness.py. Nothing is read from a path the host follows: figures come over
a pipe, and /tmp/outputs is read here, inside the sandbox, refusing links and anything but regular files.
Every artifact goes out as an `A` frame and its `B` frames, within the run's caps; past them, one is
announced refused and nothing follows.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from typing import Any

if __package__:  # imported on the host
    from podrun.runners import harness_cells, harness_child, protocol
else:  # in the sandbox, beside protocol.py (harness.py put this directory on sys.path)
    import harness_cells  # type: ignore[import-not-found, no-redef]
    import harness_child  # type: ignore[import-not-found, no-redef]
    import protocol  # type: ignore[import-not-found, no-redef]

# Files a script leaves here become artifacts after it exits.
OUTPUTS_DIR = protocol.SANDBOX_TMP + "/outputs"
# The announcement that precedes a figure on the artifact pipe: {"name": str, "size": int}.
MAX_ANNOUNCEMENT = 1024

Emit = Callable[[str, "bytes | dict[str, Any] | None"], None]


class Artifacts:
    """One run's artifacts: the figure pipe's stream taken apart, the caps counted, the frames emitted."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.announcement: dict[str, Any] | None = None
        self.buffer = b""
        self.sent = 0
        self.bytes_sent = 0
        self.refused = False
        self.max_count = 0
        self.max_bytes = 0
        # The limit the script died of, as its process said (harness_child.DIED_OF_MEMORY_LINE).
        self.died_of: str | None = None
        # A kernel's pipe carries every cell's end as well: it stays open past the caps (figures then are
        # skipped, still acknowledged), and `cell_done` holds how the last cell ended until it is taken.
        self.keep_open = False
        self.skipping = False
        self.cell_done: dict[str, Any] | None = None

    def new_cell(self, max_count: int, max_bytes: int) -> None:
        """Count a kernel's next cell's artifacts afresh, under its caps."""
        self.sent = self.bytes_sent = 0
        self.refused = False
        self.max_count, self.max_bytes = max_count, max_bytes
        self.died_of = None

    def take_figures(self, data: bytes, before: Callable[[], None], ack: Callable[[], None]) -> bool:
        """Take bytes from the figure pipe; send each whole figure (after `before`), then `ack` it.

        False when no more figures are to be taken: the caps were reached, or the pipe carried something malformed.
        """
        self.buffer += data
        while True:
            if self.announcement is None:
                line, newline, rest = self.buffer.partition(b"\n")
                if not newline:
                    return len(self.buffer) <= MAX_ANNOUNCEMENT
                if line == harness_child.DIED_OF_MEMORY_LINE.rstrip(b"\n"):
                    self.died_of = protocol.DIED_OF_MEMORY
                    self.buffer = rest
                    continue
                if self.keep_open and (done := _cell_done(line)) is not None:
                    self.cell_done, self.buffer = done, rest
                    continue
                announcement = _announcement(line)
                if announcement is None:
                    return False
                self.announcement, self.buffer = announcement, rest
                self.skipping = not self.within_caps(announcement["size"])
                if self.skipping:
                    if not self.refused:
                        self.send(announcement["name"], b"", size=announcement["size"])
                    if not self.keep_open:
                        return False
            size = self.announcement["size"]
            if len(self.buffer) < size:
                return True
            body, self.buffer = self.buffer[:size], self.buffer[size:]
            if not self.skipping:
                before()
                self.send(self.announcement["name"], body)
            self.announcement = None
            ack()

    def within_caps(self, size: int) -> bool:
        """Whether one more artifact of `size` bytes stays within the run's caps."""
        return not self.refused and self.sent < self.max_count and self.bytes_sent + size <= self.max_bytes

    def send(self, name: str, data: bytes, size: int | None = None) -> None:
        """Send one artifact, or refuse it (and all after it) when it would break the caps."""
        media_type = protocol.artifact_media_type(name)
        if media_type is None or self.refused:
            return
        size = len(data) if size is None else size
        refused = not self.within_caps(size)
        self.emit("A", {"name": name, "media_type": media_type, "size": size, "refused": refused})
        if refused:
            self.refused = True
            return
        for offset in range(0, len(data), protocol.ARTIFACT_CHUNK):
            self.emit("B", data[offset : offset + protocol.ARTIFACT_CHUNK])
        self.sent += 1
        self.bytes_sent += size

    def send_output_files(self) -> None:
        """Send the regular files the script left in /tmp/outputs, by name; never a link, never more than the caps."""
        try:
            directory = os.open(OUTPUTS_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            return
        try:
            for name in sorted(os.listdir(directory)):
                if self.refused:
                    return
                if protocol.artifact_media_type(name) is None:
                    continue
                room = max(0, self.max_bytes - self.bytes_sent)
                found = read_regular_file(directory, name, room + 1)
                if found is not None:
                    data, size = found
                    self.send(name, data if len(data) == size else b"", size=size)
        finally:
            os.close(directory)


def _cell_done(line: bytes) -> dict[str, Any] | None:
    """How a kernel's cell ended, from its process's line (harness_cells.py); None for any other line."""
    try:
        value = json.loads(line.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    done = value.get(harness_cells.CELL_DONE_KEY) if isinstance(value, dict) else None
    return done if isinstance(done, dict) else None


def _announcement(line: bytes) -> dict[str, Any] | None:
    """The {"name", "size"} the script process put before a figure; None for anything else."""
    try:
        value = json.loads(line.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(value, dict):
        return None
    name, size = value.get("name"), value.get("size")
    if not isinstance(name, str) or protocol.artifact_media_type(name) is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return None
    return {"name": name, "size": size}


def read_regular_file(directory: int, name: str, at_most: int) -> tuple[bytes, int] | None:
    """Up to `at_most` bytes of the regular file `name` in `directory`, and its size; None for anything else.

    O_NOFOLLOW refuses a symbolic link, O_NONBLOCK keeps a FIFO from blocking the open, and fstat on the
    opened file decides: what the name pointed to when checked is what is read.
    """
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=directory)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        chunks: list[bytes] = []
        remaining = at_most
        while remaining > 0 and (chunk := os.read(fd, min(harness_child.READ_CHUNK, remaining))):
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        # A file still growing is as large as what was read, at least.
        return data, (max(info.st_size, len(data)) if len(data) >= at_most else len(data))
    except OSError:
        return None
    finally:
        os.close(fd)
