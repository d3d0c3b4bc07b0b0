"""How a worker hears that one of its kernels has something to do: one Redis subscription for all of them.

The API publishes on the kernel's wake channel (a cell sent, a stop or a restart asked); the worker's kernels
each wait on an event of their own, set by the one listener. A wake lost (Redis away, a message missed while
resubscribing) only delays the kernel until its next read of the rows (kernels/session.py's POLL_S).
"""

from __future__ import annotations

import asyncio
import contextlib
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError

from podrun import tasks
from podrun.redis_client import Keys

RESUBSCRIBE_AFTER_S = 1.0
READ_TIMEOUT_S = 1.0


class KernelWakes:
    """The kernels of this process waiting for a wake, and the one listener that sets them."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.waiting: dict[UUID, asyncio.Event] = {}
        self.listener: asyncio.Task[None] | None = None
        # Set when the worker begins to shut down: its kernels end now (they never complete on their own).
        self.closing = False

    async def wait(self, kernel_id: UUID, timeout_s: float) -> None:
        """Until the kernel is woken or `timeout_s` has passed."""
        if self.listener is None:
            self.listener = asyncio.create_task(self._listen(), name="kernel-wakes")
        event = self.waiting.setdefault(kernel_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout_s)
        event.clear()

    def close_all(self) -> None:
        """The worker is shutting down: wake every kernel, to end."""
        self.closing = True
        for event in self.waiting.values():
            event.set()

    def forget(self, kernel_id: UUID) -> None:
        """The kernel has ended."""
        self.waiting.pop(kernel_id, None)

    async def close(self) -> None:
        """Stop listening."""
        if self.listener is not None:
            await tasks.stop(self.listener)

    async def _listen(self) -> None:
        pattern = self.keys.kernel_wake("*")
        prefix = pattern[:-1]
        while True:
            try:
                async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.psubscribe(pattern)
                    for event in self.waiting.values():
                        event.set()  # what was published while nobody listened
                    while True:
                        message = await pubsub.get_message(timeout=READ_TIMEOUT_S)
                        if message is None:
                            continue
                        channel = message["channel"]
                        channel = channel.decode() if isinstance(channel, bytes) else str(channel)
                        with contextlib.suppress(ValueError):
                            woken = self.waiting.get(UUID(channel.removeprefix(prefix)))
                            if woken is not None:
                                woken.set()
            except (RedisError, OSError):
                await asyncio.sleep(RESUBSCRIBE_AFTER_S)


async def wake(redis: Redis, keys: Keys, kernel_id: UUID) -> None:
    """Tell the worker holding the kernel it has something to do (best effort: it reads its rows anyway)."""
    with contextlib.suppress(RedisError, OSError):
        await redis.publish(keys.kernel_wake(kernel_id), "")
