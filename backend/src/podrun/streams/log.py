"""One execution's event log in Redis: a stream whose entry ids are `0-<seq>`.

Explicit ids make `seq` the stream's own order: a replay is `XRANGE (0-<afterSeq> +`, and a second
writer (a zombie worker) cannot append a duplicate seq, because Redis refuses ids that go backwards.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from redis.asyncio import Redis

from podrun.core.output import Stream
from podrun.core.statuses import ExecutionStatus
from podrun.redis_client import Keys
from podrun.streams.events import Event, LineEvent, StatusEvent, from_fields, to_fields

REPLAY_PAGE = 1000


def entry_id(seq: int) -> str:
    """The stream entry id of an event."""
    return f"0-{seq}"


def entry_seq(entry_id: bytes | str) -> int:
    """The seq of a stream entry id."""
    raw = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(raw.partition("-")[2])


class EventLog:
    """Reads and appends the Redis event log of one execution."""

    def __init__(self, redis: Redis, keys: Keys, execution_id: UUID) -> None:
        self.redis = redis
        self.key = keys.events(execution_id)

    async def last_seq(self) -> int:
        """The seq of the newest event, 0 for an empty log."""
        newest = await self.redis.xrevrange(self.key, count=1)
        return entry_seq(newest[0][0]) if newest else 0

    async def append(self, events: list[Event]) -> None:
        """Append events in one round trip; their seqs must continue the log."""
        if not events:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.xadd(self.key, to_fields(event), id=entry_id(event.seq))  # type: ignore[arg-type]
            await pipe.execute()

    async def read_after(self, seq: int, count: int = REPLAY_PAGE) -> list[Event]:
        """Up to `count` events with a seq greater than `seq`, in order."""
        entries = await self.redis.xrange(self.key, min=f"({entry_id(seq)}", count=count)
        return [from_fields(entry_seq(entry), fields) for entry, fields in entries]

    async def read_all(self) -> list[Event]:
        """Every event in the log."""
        events: list[Event] = []
        while page := await self.read_after(events[-1].seq if events else 0):
            events.extend(page)
        return events

    async def expire(self, seconds: int) -> None:
        """Let the log disappear after `seconds`; PostgreSQL serves replays after that."""
        await self.redis.expire(self.key, seconds)


class LogWriter:
    """Numbers and appends the events of a run; only the holder of the run writes."""

    def __init__(self, event_log: EventLog, last_seq: int) -> None:
        self.event_log = event_log
        self.seq = last_seq

    @classmethod
    async def resume(cls, event_log: EventLog) -> LogWriter:
        """A writer continuing after whatever the log already holds (a retried job)."""
        return cls(event_log, await event_log.last_seq())

    async def lines(self, lines: list[tuple[Stream, str, bool]]) -> None:
        """Append output lines given as (stream, text, partial)."""
        now = datetime.now(UTC)
        events: list[Event] = [
            LineEvent(seq=self.seq + i, stream=stream, text=text, at=now, partial=partial)
            for i, (stream, text, partial) in enumerate(lines, 1)
        ]
        await self.event_log.append(events)
        self.seq += len(events)

    def status_event(self, status: ExecutionStatus) -> StatusEvent:
        """The next status event, not yet appended (the terminal one is archived first)."""
        return StatusEvent(seq=self.seq + 1, status=status, at=datetime.now(UTC))

    async def status(self, event: StatusEvent) -> None:
        """Append a status event made by `status_event`."""
        await self.event_log.append([event])
        self.seq = event.seq
