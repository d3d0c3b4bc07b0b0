"""A pod's log as the harness's frame stream: timestamped lines, and a follow that resumes where it broke.

The pod's only log stream carries the harness's frames. A follow (`follow`, `timestamps`) may break
at any time; the next one asks from the second of the last frame taken (`sinceTime` has whole
seconds) and skips what it had, so no frame is lost or repeated.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from datetime import UTC, datetime

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from podrun.runners import protocol
from podrun.runners.kubernetes.client import Api
from podrun.runners.kubernetes.pod import CONTAINER

Stamp = tuple[datetime, int]
_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")


def stamp_key(text: str) -> Stamp:
    """A log line's RFC 3339 timestamp as (UTC second, nanoseconds): comparable, whatever its zone or digits."""
    match = _STAMP.fullmatch(text)
    if match is None:
        raise protocol.FrameError("log line without a timestamp")
    seconds, fraction, zone = match.groups()
    second = datetime.fromisoformat(seconds + ("+00:00" if zone == "Z" else zone)).astimezone(UTC)
    return second, int((fraction or "").ljust(9, "0"))


# The container runtime writes a long line to the pod log in pieces (containerd: 16 KiB by default), each
# with its own timestamp, and a follow with `timestamps` streams them back as they are: one line reads
# "T1 piece1T2 piece2\n". Harness frames of output are base64, in which no timestamp can appear.
_PIECE_STAMP = re.compile(rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) ")


def split_log_line(line: bytes) -> tuple[bytes, bytes]:
    """(timestamp, frame) of a line of a timestamped log follow, the pieces of a split frame joined again.

    A split frame gets its last piece's timestamp: a follow resumed from it cannot start inside the frame.
    """
    raw_stamp, _, frame = line.partition(b" ")
    if frame[:1] in (b"O", b"E", b"B"):
        parts = _PIECE_STAMP.split(frame)
        if len(parts) > 1:
            return parts[-2], b"".join(parts[0::2])
    return raw_stamp, frame


class LogFollow:
    """Follows one pod's log, each request from the resume point: the last frame's timestamp and how many had it."""

    def __init__(self, cluster: Api, name: str) -> None:
        self.cluster = cluster
        self.name = name
        self.last_stamp: Stamp | None = None
        self.seen_at_last_stamp = 0
        # The request in progress: `close` ends it, since the pod's log may go on after its deletion (the
        # kubelet stops a deleted pod's containers after a grace period of at least 2 s).
        self.response: aiohttp.ClientResponse | None = None

    def close(self) -> None:
        """End the follow in progress, if any."""
        if self.response is not None:
            self.response.close()

    async def once(self) -> AsyncGenerator[bytes]:
        """One `follow` request from the resume point; yields only frames not seen before."""
        query: list[tuple[str, str]] = [("container", CONTAINER), ("follow", "true"), ("timestamps", "true")]
        if self.last_stamp is not None:
            # sinceTime has whole seconds: ask from the second of the last frame and skip what we had.
            query.append(("sinceTime", self.last_stamp[0].strftime("%Y-%m-%dT%H:%M:%SZ")))
        response = await self.cluster.open_log(self.name, query)
        resume_at, skip = self.last_stamp, self.seen_at_last_stamp
        self.response = response
        try:
            if response.status != 200:
                raise ApiException(status=response.status, reason=response.reason)
            while line := await response.content.readline():
                if not line.endswith(b"\n"):
                    raise aiohttp.ClientPayloadError("log line cut short")
                raw_stamp, frame = split_log_line(line)
                stamp = stamp_key(raw_stamp.decode("ascii"))
                # Asked from the whole second: skip what came before, and the frames already taken
                # that share the resume point's timestamp.
                if resume_at is not None and (stamp < resume_at or (stamp == resume_at and skip > 0)):
                    skip -= stamp == resume_at
                    continue
                if stamp == self.last_stamp:
                    self.seen_at_last_stamp += 1
                else:
                    self.last_stamp, self.seen_at_last_stamp = stamp, 1
                yield frame
        finally:
            self.response = None
            response.release()
