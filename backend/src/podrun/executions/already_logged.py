"""Output and artifacts a re-attached sandbox replays from its start that an earlier attempt already logged."""

from __future__ import annotations

import codecs

from podrun.core.output import Stream
from podrun.runners.base import OutputBytes
from podrun.streams.events import ArtifactEvent, Entry, joined_output


class AlreadyLogged:
    """Drops the replayed bytes that produced logged lines, exactly once, and keeps everything after.

    Lines are compared as text, the way the log holds them (decoded, NUL replaced, long lines cut
    into partial pieces), so every byte that produced a logged line is dropped exactly once and
    everything after it (including a partial line the dead worker never flushed) is kept.
    """

    def __init__(self, entries: list[Entry]) -> None:
        artifacts = [entry for entry in entries if isinstance(entry, ArtifactEvent)]
        # Artifacts a re-attached sandbox sends again: the first this many are logged already.
        self.artifacts = len(artifacts)
        self.artifact_bytes = sum(event.size_bytes for event in artifacts)
        self.artifacts_to_skip = self.artifacts
        self.pending = {stream: joined_output(entries, stream) for stream in Stream}
        self.output_bytes = sum(len(text.encode()) for text in self.pending.values())
        self.decoders = {stream: codecs.getincrementaldecoder("utf-8")(errors="replace") for stream in Stream}

    def skip(self, chunk: OutputBytes) -> OutputBytes:
        """The part of `chunk` not logged yet."""
        pending = self.pending[chunk.stream]
        if not pending:
            return chunk
        decoder = self.decoders[chunk.stream]
        text = decoder.decode(chunk.data).replace("\x00", "\ufffd")
        taken = min(len(text), len(pending))
        self.pending[chunk.stream] = pending[taken:]
        if self.pending[chunk.stream]:
            return OutputBytes(chunk.stream, b"")
        undecoded, _ = decoder.getstate()
        return OutputBytes(chunk.stream, text[taken:].encode("utf-8", "surrogatepass") + undecoded)

    def skip_artifact(self) -> bool:
        """Whether the artifact the sandbox sends now was logged already (and is dropped)."""
        if self.artifacts_to_skip == 0:
            return False
        self.artifacts_to_skip -= 1
        return True
