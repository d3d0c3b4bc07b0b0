"""A kernel pod's frame lines, in order, as runners/kernel.py reads them: its log, followed for the kernel's life.

A kernel's harness writes every cell's frames to the one pod log. A task follows it (resuming where a
follow broke, as `PodSandbox.output` does for a run) into a bounded queue, so a reader may wait for the
next line with a timeout without breaking the follow. The harness's start-up frames (ready, started) are
left out: a kernel's lines are its cells'. A worker that re-attaches gets the log from its start again;
runners/kernel.py skips the cells it had (`KernelSandbox.take_over`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import aiohttp
import structlog
from kubernetes_asyncio.client.exceptions import ApiException

from podrun.runners import protocol
from podrun.runners.kubernetes.logs import LogFollow

log = structlog.get_logger(__name__)

# A follow that breaks is resumed this many times in a row at most, with a growing pause.
MAX_RESUMES = 20
RESUME_PAUSE_S = 0.2
# Lines read ahead of the reader at most (the follow waits for it beyond that).
QUEUE_LINES = 256
STARTUP_TAGS = frozenset({protocol.READY.encode(), protocol.STARTED.encode()})


def is_startup_frame(line: bytes) -> bool:
    """Whether a frame line is the harness's ready or started frame."""
    return line[:1] in STARTUP_TAGS and line[1:2] in (b" ", b"\n")


class KernelLines:
    """The frame lines of one kernel pod's log, then b"" once it ended (or could not be followed any more)."""

    def __init__(self, follow: LogFollow, pod_ended: Callable[[], Awaitable[bool]]) -> None:
        self.follow = follow
        self.pod_ended = pod_ended
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=QUEUE_LINES)
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        # Set when the log could not be followed to its end (the API server unreachable): the pod may live on.
        self.lost = False

    async def next(self) -> bytes:
        """The next frame line; b"" once the log has ended or the follow was closed."""
        if self.task is None and not self.closed:
            self.task = asyncio.create_task(self._follow(), name=f"kernel log {self.follow.name}")
        if self.closed and self.queue.empty():
            return b""
        return await self.queue.get()

    def close(self) -> None:
        """Stop following; a waiting reader gets b""."""
        if self.closed:
            return
        self.closed = True
        self.follow.close()
        if self.task is not None:
            self.task.cancel()
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                self.queue.get_nowait()
        self.queue.put_nowait(b"")

    async def _follow(self) -> None:
        failures = 0
        ended = False
        try:
            while not self.closed:
                new_frames = 0
                try:
                    async for line in self.follow.once():
                        new_frames += 1
                        failures = 0
                        if not is_startup_frame(line):
                            await self.queue.put(line)
                except (aiohttp.ClientError, TimeoutError, ApiException) as exc:
                    if self.closed:
                        return
                    failures += 1
                    log.warning("kernel log follow broke, resuming", sandbox=self.follow.name, error=type(exc).__name__)
                    if failures > MAX_RESUMES:
                        self.lost = True
                        break
                # The log ended: the pod has, or the follow broke. Once it has ended, one more pass picks up
                # frames a break hid.
                if ended and new_frames == 0:
                    break
                ended = await self.pod_ended()
                await asyncio.sleep(0 if ended else RESUME_PAUSE_S * min(failures + 1, 10))
        except (ApiException, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("kernel pod unreachable", sandbox=self.follow.name, error=type(exc).__name__)
            self.lost = True
        except (ValueError, UnicodeDecodeError) as exc:  # a log line without its timestamp
            log.warning("malformed kernel log line", sandbox=self.follow.name, error=type(exc).__name__)
            self.lost = True
        if not self.closed:
            await self.queue.put(b"")
