"""A pod's stdin over pods/attach: a WebSocket speaking v4.channel.k8s.io, stdin only (output comes from the log).

Input given at submission travels in the header (then EOF). Without it, the container's stdin stays
open, and the runner attaches on the first input or close, sending the harness's `I` and `C` frames on
channel 0 (a warm pod's header goes the same way). A worker that re-attaches to a running pod attaches
again; the input already delivered is counted in pod annotations, so the input the new worker replays
from the control stream is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import aiohttp
import structlog
from kubernetes_asyncio.client import models as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from podrun.runners import protocol
from podrun.runners.base import STDIN_FRAME_BYTES
from podrun.runners.kubernetes.client import REQUEST_TIMEOUT_S, Api
from podrun.runners.kubernetes.pod import ANNOTATION_STDIN_CLOSED, ANNOTATION_STDIN_DELIVERED, CONTAINER

log = structlog.get_logger(__name__)

# The channel of the container's stdin on an attach WebSocket (v4.channel.k8s.io), and of its status.
STDIN_CHANNEL = 0
ERROR_CHANNEL = 3
# Sending a frame over a fresh attach is tried this many times before the input is given up, with a growing pause.
ATTACH_ATTEMPTS = 3
RETRY_PAUSE_S = 0.2
# A warm pod's header and a kernel's cells go over the attach stream in messages no larger than input frames.
ATTACH_MESSAGE_BYTES = 64 * 1024


class StdinAttach:
    """The script's stdin in one pod, as this worker reaches it; `ended` says when there is no script to feed.

    Stdin is closed from the start when the header carried it. `delivered` counts the bytes the pod
    has had, by any worker (an earlier one's count comes from the pod's annotation); `seen` the bytes
    this worker was asked to write: the control stream replays everything to a re-attaching worker,
    and what the pod has had already is skipped.
    """

    def __init__(self, cluster: Api, name: str, *, closed: bool, ended: Callable[[], bool]) -> None:
        self.cluster = cluster
        self.name = name
        self.ended = ended
        self.closed = closed
        self.delivered = 0
        self.seen = 0
        self.socket: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()

    def resume_from(self, pod: k8s.V1Pod) -> None:
        """Take up what an earlier worker delivered to this pod's stdin, from its annotations (a re-attach)."""
        annotations = (pod.metadata and pod.metadata.annotations) or {}
        with contextlib.suppress(ValueError):
            self.delivered = max(0, int(annotations.get(ANNOTATION_STDIN_DELIVERED, "0")))
        if annotations.get(ANNOTATION_STDIN_CLOSED) == "true":
            self.closed = True

    async def deliver_header(self, frame: bytes) -> bool:
        """Hand a claimed warm pod its header. Tried once: after a failure the header may be partly in the pod."""
        async with self.lock:
            try:
                ws = await self._attached()
                for offset in range(0, len(frame), ATTACH_MESSAGE_BYTES):
                    await ws.send_bytes(bytes([STDIN_CHANNEL]) + frame[offset : offset + ATTACH_MESSAGE_BYTES])
            except (ApiException, aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
                log.warning("header not delivered to warm pod", sandbox=self.name, error=type(exc).__name__)
                await self.detach()
                return False
        return True

    async def write(self, data: bytes) -> None:
        """Forward input to the script over pods/attach, in `I` frames of a bounded size."""
        async with self.lock:
            if self.closed or self.ended():
                return
            skip = max(0, self.delivered - self.seen)  # replayed: the pod had it already
            self.seen += len(data)
            data = data[skip:]
            if not data:
                return
            for offset in range(0, len(data), STDIN_FRAME_BYTES):
                if not await self._send(
                    protocol.encode_frame(protocol.INPUT, data[offset : offset + STDIN_FRAME_BYTES])
                ):
                    log.warning("input not delivered to pod", sandbox=self.name, bytes=len(data) - offset)
                    return
            self.delivered += len(data)
            await self._record({ANNOTATION_STDIN_DELIVERED: str(self.delivered)})

    async def close(self) -> None:
        """Ask the harness to close the script's stdin (a `C` frame over pods/attach)."""
        async with self.lock:
            if self.closed or self.ended():
                return
            self.closed = True
            if not await self._send(protocol.encode_frame(protocol.CLOSE)):
                log.warning("stdin close not delivered to pod", sandbox=self.name)
                return
            await self._record({ANNOTATION_STDIN_CLOSED: "true"})

    async def send(self, frame: bytes) -> bool:
        """Send one frame as it is (a kernel's cell or interrupt), attaching as needed; whether it went."""
        async with self.lock:
            if not await self._send(frame):
                log.warning("frame not delivered to pod", sandbox=self.name)
                return False
        return True

    async def _send(self, frame: bytes) -> bool:
        """Send one frame on the attach stream's stdin channel, attaching (again) as needed."""
        for attempt in range(ATTACH_ATTEMPTS):
            if self.ended():
                return False
            try:
                ws = await self._attached()
                for offset in range(0, len(frame), ATTACH_MESSAGE_BYTES):
                    await ws.send_bytes(bytes([STDIN_CHANNEL]) + frame[offset : offset + ATTACH_MESSAGE_BYTES])
                return True
            except (ApiException, aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
                log.warning("pod attach failed", sandbox=self.name, attempt=attempt + 1, error=type(exc).__name__)
                await self.detach()
                await asyncio.sleep(RETRY_PAUSE_S * attempt)
        return False

    async def _attached(self) -> aiohttp.ClientWebSocketResponse:
        """The open attach WebSocket to the container's stdin (stdin only: output comes from the log)."""
        if self.socket is not None and not self.socket.closed:
            return self.socket
        api = await self.cluster.ws()
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            # With _preload_content=False, WsApiClient returns aiohttp's ws_connect (typed as str here).
            connecting: Awaitable[aiohttp.ClientWebSocketResponse] = await api.connect_get_namespaced_pod_attach(  # type: ignore[assignment]
                self.name,
                self.cluster.namespace,
                container=CONTAINER,
                stdin=True,
                stdout=False,
                stderr=False,
                tty=False,
                _preload_content=False,
            )
            ws = await connecting
        self.socket = ws
        self.reader = asyncio.create_task(self._read_attach(ws), name="pod-attach")
        log.info("attached to pod stdin", sandbox=self.name)
        return ws

    async def _read_attach(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Read what the server sends on the attach stream (its status at the end), so pings and closes are seen."""
        with contextlib.suppress(aiohttp.ClientError, ConnectionError):
            async for message in ws:
                data = message.data if message.type == aiohttp.WSMsgType.BINARY else b""
                if data[:1] == bytes([ERROR_CHANNEL]) and len(data) > 1:
                    log.info("pod attach ended", sandbox=self.name, status=data[1:].decode(errors="replace"))

    async def detach(self) -> None:
        """Close the attach stream (a later frame attaches again)."""
        ws, reader = self.socket, self.reader
        self.socket = self.reader = None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if ws is not None:
            with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                await ws.close()

    async def _record(self, annotations: dict[str, str]) -> None:
        """Note on the pod how much input it has had, for a worker that re-attaches after this one."""
        api = await self.cluster.core()
        try:
            await api.patch_namespaced_pod(
                self.name,
                self.cluster.namespace,
                {"metadata": {"annotations": annotations}},
                _request_timeout=REQUEST_TIMEOUT_S,
            )
        except (ApiException, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("stdin progress not recorded", sandbox=self.name, error=type(exc).__name__)
