"""Turning a script's raw output bytes into lines for the event log.

Per stream: decode UTF-8 incrementally (invalid bytes become U+FFFD, NUL becomes U+FFFD too, since
PostgreSQL text cannot hold it), cut at newlines, cut lines longer than 64 KiB (or whose JSON would
pass 192 KiB: control characters are escaped six bytes each), and let the caller flush a partial
line once no output has arrived for 100 ms. The output cap counts raw bytes.

Lines come out as runs: consecutive lines of one stream that share their partial flag, one list of
texts each. A chunk of complete short lines, by far the most common output, is one run whatever
its number of lines: a line costs its text, not an object of its own.
"""

from __future__ import annotations

import codecs
import json
import time

from podrun.core.output import Stream

MAX_LINE_BYTES = 64 * 1024
# A line's text as JSON (what a WebSocket message carries) stays below this, so one line always fits a message.
MAX_LINE_JSON = 192 * 1024
PARTIAL_FLUSH_S = 0.1
# A line of at most this many characters needs no cutting: at 4 UTF-8 bytes a character it stays within
# MAX_LINE_BYTES, and at 6 bytes of JSON escape a byte within MAX_LINE_JSON.
SHORT_LINE = MAX_LINE_JSON // 6 // 4

# (stream, texts, partial): lines of one stream; each is partial (did not end with a newline) if `partial` is.
Run = tuple[Stream, list[str], bool]


def line_count(runs: list[Run]) -> int:
    """How many lines `runs` hold."""
    return sum(len(texts) for _, texts, _ in runs)


class _StreamLines:
    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""
        self.pending_since: float | None = None

    def feed(self, data: bytes, now: float) -> list[Run]:
        text = self.decoder.decode(data).replace("\x00", "\ufffd")
        complete = (self.pending + text).split("\n")
        rest = complete.pop()
        stream = self.stream
        # Almost every line is short enough to need no cutting: the lines as split are the run, no work per line.
        if max(map(len, complete), default=0) <= SHORT_LINE:
            runs: list[Run] = [(stream, complete, False)] if complete else []
        else:
            runs = []
            for line in complete:
                *pieces, last = _pieces(line)
                if pieces:
                    runs.append((stream, pieces, True))
                runs.append((stream, [last], False))
        self.pending = ""
        if rest:
            *long_pieces, self.pending = _pieces(rest)
            if long_pieces:
                runs.append((stream, long_pieces, True))
        self.pending_since = (self.pending_since or now) if self.pending else None
        return runs

    def flush(self, final: bool = False) -> list[Run]:
        if final:
            self.pending += self.decoder.decode(b"", final=True).replace("\x00", "\ufffd")
        if not self.pending:
            return []
        run = (self.stream, [self.pending], True)
        self.pending, self.pending_since = "", None
        return [run]


def _pieces(line: str) -> list[str]:
    """`line` cut into pieces of at most MAX_LINE_BYTES and MAX_LINE_JSON (all but the last are partial)."""
    if len(line) <= SHORT_LINE:
        return [line]
    texts: list[str] = []
    data = line.encode()
    while len(data) > MAX_LINE_BYTES:
        cut = MAX_LINE_BYTES
        while data[cut] & 0xC0 == 0x80:  # never cut inside a UTF-8 sequence
            cut -= 1
        texts.append(data[:cut].decode())
        data = data[cut:]
    texts.append(data.decode())
    return [piece for text in texts for piece in _within_json_bound(text)]


def _within_json_bound(text: str) -> list[str]:
    """`text` in pieces whose JSON encoding stays within MAX_LINE_JSON (halving only what exceeds it)."""
    if len(json.dumps(text)) <= MAX_LINE_JSON:
        return [text]
    middle = len(text) // 2
    return _within_json_bound(text[:middle]) + _within_json_bound(text[middle:])


class LineAssembler:
    """Collects output bytes of both streams and hands out finished lines, within an output cap."""

    def __init__(self, output_limit: int) -> None:
        self.output_limit = output_limit
        self.output_bytes = 0
        self.truncated = False
        self.last_output: float | None = None
        self._streams = {stream: _StreamLines(stream) for stream in Stream}

    def feed(self, stream: Stream, data: bytes) -> list[Run]:
        """Lines completed by `data`. Bytes past the cap are dropped and `truncated` is set."""
        room = self.output_limit - self.output_bytes
        if len(data) > room:
            data = data[: max(room, 0)]
            self.truncated = True
        self.output_bytes += len(data)
        self.last_output = time.monotonic()
        return self._streams[stream].feed(data, self.last_output)

    def due_in(self) -> float | None:
        """Seconds until pending partial lines may be flushed (no output for 100 ms), or None if none is pending."""
        if self.last_output is None or not any(s.pending_since is not None for s in self._streams.values()):
            return None
        return max(0.0, self.last_output + PARTIAL_FLUSH_S - time.monotonic())

    def flush_due(self) -> list[Run]:
        """Partial lines, once no output has come for PARTIAL_FLUSH_S: the script paused after writing them."""
        due_in = self.due_in()
        if due_in is None or due_in > 0:
            return []
        return [run for lines_of_stream in self._streams.values() for run in lines_of_stream.flush()]

    def flush_pending(self) -> list[Run]:
        """Partial lines now (something else, an artifact, comes after them in the log)."""
        return [run for lines_of_stream in self._streams.values() for run in lines_of_stream.flush()]

    def flush_all(self) -> list[Run]:
        """Everything still pending, at the end of a run."""
        return [run for lines_of_stream in self._streams.values() for run in lines_of_stream.flush(final=True)]
