"""Closing the open sockets of sign-ins just revoked (signed out, a reused refresh token, an admin's action).

Every socket belongs to the sign-in whose access token opened it. The account service publishes each
revoked sign-in's id on a Redis channel; every API process listens and closes the sockets it holds for
it with close code 4403, the code of a rejected `connection_init`: the web client and `prun` answer it
by refreshing and, if that is refused, by asking to sign in again; then they resume with `afterSeq`.
HTTP needs nothing of this: every request checks its sign-in again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import Any
from uuid import UUID

import structlog
from litestar.connection import WebSocket
from redis.asyncio import Redis
from redis.exceptions import RedisError

from podrun import tasks
from podrun.redis_client import Keys

log = structlog.get_logger(__name__)

CLOSE_CODE = 4403
CLOSE_REASON = "the sign-in ended"
RETRY_DELAY_S = 1.0
WAIT_S = 5.0
# Closed sockets are dropped from the registry once it has grown to twice what the last sweep left (at least this).
FIRST_SWEEP = 64


class SocketRevocations:
    """The signed-in sockets of one API process, by sign-in, and the listener that closes them."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._sockets: defaultdict[UUID, set[WebSocket[Any, Any, Any]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._watched = 0
        self._next_sweep = FIRST_SWEEP

    def watch(self, sign_in_id: UUID, socket: WebSocket[Any, Any, Any]) -> None:
        """Close `socket` when sign-in `sign_in_id` is revoked."""
        self._sockets[sign_in_id].add(socket)
        self._watched += 1
        if self._watched >= self._next_sweep:
            self._sweep()

    def _sweep(self) -> None:
        # Strawberry's handler gives no hook when a socket closes; Litestar marks it, so drop those (amortised O(1)).
        for sign_in_id in list(self._sockets):
            self._sockets[sign_in_id] = {s for s in self._sockets[sign_in_id] if s.connection_state != "disconnect"}
            if not self._sockets[sign_in_id]:
                del self._sockets[sign_in_id]
        self._watched = sum(len(sockets) for sockets in self._sockets.values())
        self._next_sweep = max(FIRST_SWEEP, 2 * self._watched)

    async def start(self) -> None:
        """Start listening; returns once subscribed, so no notice sent after start-up is missed."""
        self._task = asyncio.create_task(self._listen(), name="socket-revocations")
        await self._listening.wait()

    async def stop(self) -> None:
        """Stop listening."""
        if self._task is not None:
            await tasks.stop(self._task)

    async def close_all(self, sign_in_id: UUID) -> None:
        """Close every socket this process holds for sign-in `sign_in_id`."""
        sockets = self._sockets.pop(sign_in_id, set())
        self._watched -= len(sockets)
        for socket in sockets:
            # Already closing or gone: nothing more to do for that one.
            with contextlib.suppress(Exception):
                await socket.close(code=CLOSE_CODE, reason=CLOSE_REASON)
        if sockets:
            log.info("sockets closed: sign-in revoked", sign_in_id=str(sign_in_id), sockets=len(sockets))

    async def _listen(self) -> None:
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.keys.sign_ins_revoked)
                    self._listening.set()
                    while True:
                        # Shorter than the pool's socket timeout, so a quiet channel is not taken for a dead one.
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=WAIT_S)
                        if message is not None and message.get("type") == "message":
                            await self._on_notice(message["data"])
            except (RedisError, OSError) as error:
                # A notice lost meanwhile leaves a socket open, but each operation it starts checks its sign-in.
                log.warning("revocation listener lost Redis; retrying", error=type(error).__name__)
                self._listening.set()
                await asyncio.sleep(RETRY_DELAY_S)

    async def _on_notice(self, data: bytes | str) -> None:
        try:
            sign_in_id = UUID(data.decode() if isinstance(data, bytes) else data)
        except ValueError:
            log.warning("revocation notice ignored: not a sign-in id")
            return
        await self.close_all(sign_in_id)
