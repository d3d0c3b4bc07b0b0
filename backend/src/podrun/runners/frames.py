"""The host's side of the harness protocol: the header a run sends, and one reader of the frames it gets back.

Both runners use these; only how the lines travel differs (a pipe from bubblewrap, a pod's log).
"""

from __future__ import annotations

from collections.abc import Callable

from podrun.core.output import Stream
from podrun.runners import protocol
from podrun.runners.artifact_frames import ArtifactFrames
from podrun.runners.base import ArtifactCaps, OutputBytes, SandboxOutput, SandboxSpec

STREAMS = {protocol.STDOUT: Stream.STDOUT, protocol.STDERR: Stream.STDERR}


def header_for(
    spec: SandboxSpec,
    *,
    stdin_eof: bool,
    memory_bytes: int | None,
    processes: int | None,
    file_size_bytes: int | None,
) -> protocol.Header:
    """The header of the run `spec`; the limits given as None are enforced outside the harness (a cgroup)."""
    return protocol.Header(
        script=spec.script,
        stdin=spec.stdin or b"",
        stdin_eof=stdin_eof,
        cpu_time_ms=spec.limits.cpu_time_ms,
        memory_bytes=memory_bytes,
        processes=processes,
        file_size_bytes=file_size_bytes,
        files=tuple((file.name, file.content) for file in spec.files),
        max_artifacts=spec.artifact_caps.count,
        max_artifact_bytes=spec.artifact_caps.total_bytes,
        kernel=spec.kernel,
    )


def header_frame(header: protocol.Header) -> bytes:
    """The header as the frame the harness reads first."""
    return protocol.encode_frame(protocol.HEADER, header.to_json())


class FrameReader:
    """Turns the harness's frames into output and artifacts, and keeps its exit record.

    `on_ready` is called for a ready frame; without it a ready frame here is a protocol error (the
    local runner reads that frame itself, before the run). Raises `protocol.FrameError` on anything malformed.
    """

    def __init__(self, caps: ArtifactCaps, on_ready: Callable[[], None] | None = None) -> None:
        self.artifacts = ArtifactFrames(caps)
        self.on_ready = on_ready
        self.exit: protocol.Exit | None = None

    def read(self, line: bytes) -> SandboxOutput | None:
        """What one whole line (its newline included) carries for the run, if anything."""
        if not line.endswith(b"\n"):
            raise protocol.FrameError("truncated frame")
        tag, payload = protocol.parse_frame(line)
        if tag in STREAMS:
            return OutputBytes(STREAMS[tag], protocol.decode_b64(payload.decode("ascii")))
        if tag == protocol.ARTIFACT:
            return self.artifacts.announce(payload)
        if tag == protocol.ARTIFACT_DATA:
            return self.artifacts.data(payload)
        if tag == protocol.EXIT:
            self.exit = protocol.Exit.from_json(protocol.parse_json_payload(payload))
            return None
        if tag == protocol.STARTED:
            return None  # the header has arrived (a warm sandbox's: its wall time already counts)
        if tag == protocol.READY and self.on_ready is not None:
            self.on_ready()
            return None
        raise protocol.FrameError("unexpected frame")
