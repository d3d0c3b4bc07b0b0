"""The harness's artifact frames (`A` announces one, `B` frames carry its bytes), put back together on the host.

Both runners read them the same way. The host checks what it is told rather than trusting it: the
name and type must be ones the harness may send, the bytes must add up to the announced size, and
a sandbox that sends more than its caps is stopped with what it sent so far.
"""

from __future__ import annotations

from podrun.runners import protocol
from podrun.runners.base import ArtifactCaps, ArtifactOutput


class ArtifactFrames:
    """Assembles one sandbox's artifacts from its frames; raises `protocol.FrameError` on anything malformed."""

    def __init__(self, caps: ArtifactCaps) -> None:
        self.caps = caps
        self.name = ""
        self.media_type = ""
        self.size = 0
        self.pieces: list[bytes] = []
        self.received = 0
        self.expecting = False

    def announce(self, payload: bytes) -> ArtifactOutput | None:
        """An `A` frame: the artifact if complete already (empty, or refused), else None until its bytes come."""
        if self.expecting:
            raise protocol.FrameError("artifact announced before the last one ended")
        value = protocol.parse_json_payload(payload)
        if not isinstance(value, dict):
            raise protocol.FrameError("artifact is not an object")
        name, media_type, size, refused = (value.get(key) for key in ("name", "media_type", "size", "refused"))
        if not isinstance(name, str) or not isinstance(media_type, str) or not isinstance(refused, bool):
            raise protocol.FrameError("artifact is not {name, media_type, size, refused}")
        if protocol.artifact_media_type(name) != media_type:
            raise protocol.FrameError("artifact has an invalid name or type")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise protocol.FrameError("artifact has an invalid size")
        if not refused and size > self.caps.total_bytes:
            raise protocol.FrameError("artifact larger than the caps it was given")
        self.name, self.media_type, self.size = name, media_type, size
        self.pieces, self.received = [], 0
        if refused or size == 0:
            return ArtifactOutput(name, media_type, b"", size, refused=refused)
        self.expecting = True
        return None

    def data(self, payload: bytes) -> ArtifactOutput | None:
        """A `B` frame: the artifact once its last bytes have come, else None."""
        if not self.expecting:
            raise protocol.FrameError("artifact data without an artifact")
        piece = protocol.decode_b64(payload.decode("ascii"))
        self.received += len(piece)
        if self.received > self.size:
            raise protocol.FrameError("artifact longer than announced")
        self.pieces.append(piece)
        if self.received < self.size:
            return None
        self.expecting = False
        data = b"".join(self.pieces)
        self.pieces = []
        return ArtifactOutput(self.name, self.media_type, data, self.size)
