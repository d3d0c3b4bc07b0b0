"""Closing the open sockets of an account whose sessions just ended (disabled, or its password reset).

The account service publishes the user's id on a Redis channel; every API process listens and closes
the sockets it holds for that user (close code 4403, as for a rejected `connection_init`). HTTP needs
nothing of this: every request checks the account again.
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
CLOSE_REASON = "the session ended"
RETRY_DELAY_S = 1.0
WAIT_S = 5.0
# Closed sockets are dropped from the registry once it has grown to twice what the last sweep left (at least this).
FIRST_SWEEP = 64


class SocketRevocations:
    """The signed-in sockets of one API process, by user, and the listener that closes them."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._sockets: defaultdict[UUID, set[WebSocket[Any, Any, Any]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._watched = 0
        self._next_sweep = FIRST_SWEEP

    def watch(self, user_id: UUID, socket: WebSocket[Any, Any, Any]) -> None:
        """Close `socket` when `user_id`'s sessions end."""
        self._sockets[user_id].add(socket)
        self._watched += 1
        if self._watched >= self._next_sweep:
            self._sweep()

    def _sweep(self) -> None:
        # Strawberry's handler gives no hook when a socket closes; Litestar marks it, so drop those (amortised O(1)).
        for user_id in list(self._sockets):
            self._sockets[user_id] = {s for s in self._sockets[user_id] if s.connection_state != "disconnect"}
            if not self._sockets[user_id]:
                del self._sockets[user_id]
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

    async def close_all(self, user_id: UUID) -> None:
        """Close every socket this process holds for `user_id`."""
        sockets = self._sockets.pop(user_id, set())
        self._watched -= len(sockets)
        for socket in sockets:
            # Already closing or gone: nothing more to do for that one.
            with contextlib.suppress(Exception):
                await socket.close(code=CLOSE_CODE, reason=CLOSE_REASON)
        if sockets:
            log.info("sockets closed: session ended", user_id=str(user_id), sockets=len(sockets))

    async def _listen(self) -> None:
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.keys.users_revoked)
                    self._listening.set()
                    while True:
                        # Shorter than the pool's socket timeout, so a quiet channel is not taken for a dead one.
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=WAIT_S)
                        if message is not None and message.get("type") == "message":
                            await self._on_notice(message["data"])
            except (RedisError, OSError) as error:
                # A notice lost meanwhile leaves a socket open, but each operation it starts checks the account.
                log.warning("revocation listener lost Redis; retrying", error=type(error).__name__)
                self._listening.set()
                await asyncio.sleep(RETRY_DELAY_S)

    async def _on_notice(self, data: bytes | str) -> None:
        try:
            user_id = UUID(data.decode() if isinstance(data, bytes) else data)
        except ValueError:
            log.warning("revocation notice ignored: not a user id")
            return
        await self.close_all(user_id)
