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
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import structlog
from redis.asyncio import Redis

from podrun import tasks
from podrun.core.backoff import Backoff
from podrun.observability.metrics import SUBSCRIPTIONS_ACTIVE
from podrun.redis_client import Keys
from podrun.streams.events import Entry, from_fields
from podrun.streams.log import entry_id, entry_seq

log = structlog.get_logger(__name__)

BLOCK_MS = 5000
# Entries one read takes from each log (an entry holds up to BATCH_LINES lines: up to 50,000 lines a read).
READ_COUNT = 50
# A subscriber that falls this many reads behind is told it lagged and re-reads from Redis instead.
QUEUE_SIZE = 1000
WAKE_TTL_S = 3600
RETRY_FIRST_DELAY_S = 0.1
RETRY_MAX_DELAY_S = 2.0


@dataclass(eq=False)
class Subscription:
    """What one subscriber receives: the entries of a log in seq order, or the news that it fell behind.

    Entries are handed over as they are stored (one queue item per Redis read, lines in their batches), so
    fan-out costs per read, not per event.
    """

    # A deque, not an asyncio.Queue (three deques and more): thousands of idle subscribers hold one each.
    queue: deque[list[Entry]] = field(default_factory=deque)
    lagged: bool = False
    # The hub lost Redis: what arrives from now on may miss events, so the subscriber must end.
    broken: bool = False
    # Set whenever something arrives, including a lag or a break, so the subscriber can wait on one thing.
    signal: asyncio.Event = field(default_factory=asyncio.Event)

    def deliver(self, entries: list[Entry]) -> None:
        if self.full():
            self.lagged = True
        else:
            self.queue.append(entries)
        self.signal.set()

    def full(self) -> bool:
        """Whether the subscriber is QUEUE_SIZE reads behind (what arrives then is dropped: it re-reads Redis)."""
        return len(self.queue) >= QUEUE_SIZE

    def break_off(self) -> None:
        self.broken = True
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
            await tasks.stop(self._task)
        with contextlib.suppress(Exception):
            await self.redis.delete(self._wake_key)

    @property
    def watched(self) -> int:
        """How many logs this process is following."""
        return len(self._watches)

    @contextlib.asynccontextmanager
    async def subscribe(self, key: str) -> AsyncIterator[Subscription]:
        """Receive every event appended to log `key` from now on, while inside the block.

        What the log held before is the subscriber's to replay; events may repeat ones it replayed,
        and it drops seqs it has seen.
        """
        subscription = Subscription()
        watch = self._watches.get(key)
        if watch is None:
            newest = await self.redis.xrevrange(key, count=1)
            watch = self._watches.setdefault(key, _Watch(cursor=entry_seq(newest[0][0]) if newest else 0))
            await self._wake()
        watch.subscriptions.add(subscription)
        SUBSCRIPTIONS_ACTIVE.inc()
        try:
            yield subscription
        finally:
            SUBSCRIPTIONS_ACTIVE.dec()
            watch.subscriptions.discard(subscription)
            if not watch.subscriptions and self._watches.get(key) is watch:
                del self._watches[key]

    async def _wake(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(self._wake_key, {"w": "1"}, maxlen=16, approximate=False)
            pipe.expire(self._wake_key, WAKE_TTL_S)  # a crashed process leaves nothing behind for long
            await pipe.execute()

    async def _read_forever(self) -> None:
        backoff = Backoff(RETRY_FIRST_DELAY_S, RETRY_MAX_DELAY_S)
        while True:
            try:
                await self._read_once()
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Whatever was appended while Redis was away may be lost or renumbered under a watcher's
                # feet: every current subscriber ends and resubscribes with afterSeq, which replays exactly.
                log.warning("stream hub lost redis; ending its subscriptions", error=type(exc).__name__)
                for watch in self._watches.values():
                    for subscription in watch.subscriptions:
                        subscription.break_off()
                self._watches.clear()
                await backoff.sleep()

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
            read = [from_fields(entry_seq(raw_id), fields) for raw_id, fields in entries]
            for subscription in watch.subscriptions:
                subscription.deliver(read)
            watch.cursor = entry_seq(entries[-1][0])
