"""The API side of the event logs: one reader per process, fanned out to local subscribers.

However many subscriptions a process serves, it reads Redis with one blocking `XREAD` over every
watched log at once (plus short replay reads from the shared, bounded pool). Adding a log to the
set wakes the reader through a per-process wake stream, so a new subscriber never waits for the
block timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import structlog
from redis.asyncio import Redis

from podrun.redis_client import Keys
from podrun.streams.events import Event, from_fields
from podrun.streams.log import entry_id, entry_seq

log = structlog.get_logger(__name__)

BLOCK_MS = 5000
READ_COUNT = 1000
# A subscriber that falls this many reads behind is told it lagged and re-reads from Redis instead.
QUEUE_SIZE = 1000
WAKE_TTL_S = 3600


@dataclass(eq=False)
class Subscription:
    """What one subscriber receives: batches of events in seq order, or the news that it fell behind.

    Batches are handed over whole (one queue item per Redis read), so fan-out costs per read, not per event.
    """

    queue: asyncio.Queue[list[Event]] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    lagged: bool = False
    # Set whenever something arrives, including a lag, so the subscriber can wait on one thing.
    signal: asyncio.Event = field(default_factory=asyncio.Event)

    def deliver(self, events: list[Event]) -> None:
        try:
            self.queue.put_nowait(events)
        except asyncio.QueueFull:
            self.lagged = True
        self.signal.set()


@dataclass(eq=False)
class _Watch:
    cursor: int
    subscriptions: set[Subscription] = field(default_factory=set)


class StreamHub:
    """Multiplexes every watched event log of this process over one Redis reader."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._watches: dict[str, _Watch] = {}
        self._wake_key = f"{keys.prefix}:hub:{uuid.uuid4().hex}"
        self._wake_cursor = "0-0"
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the reader task."""
        self._wake_cursor = "0-0"
        await self._wake()
        self._task = asyncio.create_task(self._read_forever(), name="stream-hub")

    async def stop(self) -> None:
        """Stop the reader task and drop the wake stream."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.redis.delete(self._wake_key)

    @property
    def watched(self) -> int:
        """How many logs this process is following."""
        return len(self._watches)

    @contextlib.asynccontextmanager
    async def subscribe(self, key: str, after_seq: int) -> AsyncIterator[Subscription]:
        """Receive every event of log `key` after `after_seq` that arrives while inside the block.

        Events may repeat ones the subscriber replayed itself; it drops seqs it has seen.
        """
        subscription = Subscription()
        watch = self._watches.get(key)
        if watch is None:
            watch = self._watches[key] = _Watch(cursor=after_seq)
            await self._wake()
        watch.subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            watch.subscriptions.discard(subscription)
            if not watch.subscriptions and self._watches.get(key) is watch:
                del self._watches[key]

    async def _wake(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(self._wake_key, {"w": "1"}, maxlen=16, approximate=False)
            pipe.expire(self._wake_key, WAKE_TTL_S)  # a crashed process leaves nothing behind for long
            await pipe.execute()

    async def _read_forever(self) -> None:
        while True:
            try:
                await self._read_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stream hub read failed; retrying")
                await asyncio.sleep(0.5)

    async def _read_once(self) -> None:
        streams: dict[str, str] = {self._wake_key: self._wake_cursor}
        streams.update({key: entry_id(watch.cursor) for key, watch in self._watches.items()})
        response = await self.redis.xread(streams, count=READ_COUNT, block=BLOCK_MS)  # type: ignore[arg-type]
        for raw_key, entries in response or []:
            key = raw_key.decode()
            if key == self._wake_key:
                self._wake_cursor = entries[-1][0].decode()
                continue
            watch = self._watches.get(key)
            if watch is None:
                continue
            events = [from_fields(entry_seq(raw_id), fields) for raw_id, fields in entries]
            for subscription in watch.subscriptions:
                subscription.deliver(events)
            watch.cursor = entry_seq(entries[-1][0])
