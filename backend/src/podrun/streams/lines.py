"""Turning a script's raw output bytes into lines for the event log.

Per stream: decode UTF-8 incrementally (invalid bytes become U+FFFD, NUL becomes U+FFFD too, since
PostgreSQL text cannot hold it), cut at newlines, cut lines longer than 64 KiB, and let the caller
flush a partial line that has waited too long. The output cap counts raw bytes.
"""

from __future__ import annotations

import codecs
import time

from podrun.core.output import Stream

MAX_LINE_BYTES = 64 * 1024
PARTIAL_FLUSH_S = 0.1

Line = tuple[Stream, str, bool]


class _StreamLines:
    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""
        self.pending_since: float | None = None

    def feed(self, data: bytes, now: float) -> list[Line]:
        text = self.decoder.decode(data).replace("\x00", "\ufffd")
        lines: list[Line] = []
        *complete, rest = (self.pending + text).split("\n")
        for line in complete:
            lines.extend(self._pieces(line, partial_tail=False))
        self.pending = ""
        if rest:
            *long_pieces, tail = self._pieces(rest, partial_tail=True)
            lines.extend(long_pieces)
            self.pending = tail[1]
        self.pending_since = (self.pending_since or now) if self.pending else None
        return lines

    def flush(self, final: bool = False) -> list[Line]:
        if final:
            self.pending += self.decoder.decode(b"", final=True).replace("\x00", "\ufffd")
        if not self.pending:
            return []
        line = (self.stream, self.pending, True)
        self.pending, self.pending_since = "", None
        return [line]

    def _pieces(self, line: str, partial_tail: bool) -> list[Line]:
        """`line` cut into pieces of at most MAX_LINE_BYTES; all but the last are partial."""
        if len(line) * 4 <= MAX_LINE_BYTES or len(line.encode()) <= MAX_LINE_BYTES:
            return [(self.stream, line, partial_tail)]
        pieces: list[Line] = []
        data = line.encode()
        while len(data) > MAX_LINE_BYTES:
            cut = MAX_LINE_BYTES
            while data[cut] & 0xC0 == 0x80:  # never cut inside a UTF-8 sequence
                cut -= 1
            pieces.append((self.stream, data[:cut].decode(), True))
            data = data[cut:]
        pieces.append((self.stream, data.decode(), partial_tail))
        return pieces


class LineAssembler:
    """Collects output bytes of both streams and hands out finished lines, within an output cap."""

    def __init__(self, output_limit: int) -> None:
        self.output_limit = output_limit
        self.output_bytes = 0
        self.truncated = False
        self._streams = {stream: _StreamLines(stream) for stream in Stream}

    def feed(self, stream: Stream, data: bytes) -> list[Line]:
        """Lines completed by `data`. Bytes past the cap are dropped and `truncated` is set."""
        room = self.output_limit - self.output_bytes
        if len(data) > room:
            data = data[: max(room, 0)]
            self.truncated = True
        self.output_bytes += len(data)
        return self._streams[stream].feed(data, time.monotonic())

    def due_in(self) -> float | None:
        """Seconds until a pending partial line must be flushed, or None if nothing is pending."""
        since = [s.pending_since for s in self._streams.values() if s.pending_since is not None]
        if not since:
            return None
        return max(0.0, min(since) + PARTIAL_FLUSH_S - time.monotonic())

    def flush_due(self) -> list[Line]:
        """Partial lines that have waited long enough."""
        deadline = time.monotonic() - PARTIAL_FLUSH_S
        lines: list[Line] = []
        for lines_of_stream in self._streams.values():
            if lines_of_stream.pending_since is not None and lines_of_stream.pending_since <= deadline:
                lines.extend(lines_of_stream.flush())
        return lines

    def flush_all(self) -> list[Line]:
        """Everything still pending, at the end of a run."""
        return [line for lines_of_stream in self._streams.values() for line in lines_of_stream.flush(final=True)]
