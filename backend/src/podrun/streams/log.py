"""One execution's event log in Redis: a stream whose entry ids are `0-<seq of the entry's last event>`.

Explicit ids make `seq` the stream's own order: a replay is `XRANGE (0-<afterSeq> +` (its first entry may be a
batch of lines that starts at or before afterSeq: the reader drops what it has seen), and a second writer (a
zombie worker) cannot append a duplicate seq, because Redis refuses ids that go backwards.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from datetime import UTC, datetime
from uuid import UUID

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from podrun.core.backoff import Backoff
from podrun.core.output import Stream
from podrun.core.statuses import ExecutionStatus
from podrun.observability.metrics import OUTPUT_LINES
from podrun.redis_client import Keys
from podrun.streams.events import (
    ArtifactEvent,
    Entry,
    StatusEvent,
    batch_lines,
    from_fields,
    to_fields,
)

log = structlog.get_logger(__name__)

# Entries one replay read fetches: an entry is a status, an artifact or up to BATCH_LINES lines and about
# BATCH_CHARS of text, so a page is up to 50,000 lines: few round trips, and a bounded stretch of work.
REPLAY_PAGE = 50
# Entries appended in one round trip at most.
APPEND_PAGE = 100
RESTORE_FIRST_DELAY_S = 0.1
RESTORE_MAX_DELAY_S = 2.0


def _now() -> datetime:
    # To the millisecond, as live subscribers have always been told: a replay from the archive tells the same.
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


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

    async def newest(self) -> Entry | None:
        """The newest entry, None for an empty (or expired) log."""
        newest = await self.redis.xrevrange(self.key, count=1)
        return from_fields(entry_seq(newest[0][0]), newest[0][1]) if newest else None

    async def append(self, entries: list[Entry], *, expire_s: int | None = None) -> None:
        """Append entries in one round trip (with `expire_s`, letting the log go that long after, in the same one);
        their seqs must continue the log."""
        if not entries and expire_s is None:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry in entries:
                pipe.xadd(self.key, to_fields(entry), id=entry_id(entry.last))  # type: ignore[arg-type]
            if expire_s is not None:
                pipe.expire(self.key, expire_s)
            await pipe.execute()

    async def entries_after(self, seq: int, count: int = REPLAY_PAGE) -> list[Entry]:
        """Up to `count` entries holding a seq greater than `seq`, in order; the first one may be a batch of lines
        that starts at or before `seq`."""
        entries = await self.redis.xrange(self.key, min=f"({entry_id(seq)}", count=count)
        return [from_fields(entry_seq(entry), fields) for entry, fields in entries]

    async def read_all(self) -> list[Entry]:
        """Every entry in the log."""
        entries: list[Entry] = []
        while page := await self.entries_after(entries[-1].last if entries else 0):
            entries.extend(page)
        return entries


class LogWriter:
    """Numbers the events of a run, keeps every one of them, and appends them to the run's Redis log.

    Only the holder of the run writes. PostgreSQL is the record and Redis may be lost at any moment,
    so the writer holds the whole log in memory (bounded by the output cap: lines stay in their stored
    form, batches) and a Redis outage never blocks the run: appends that fail are retried in the
    background, and when Redis is back, the log is restored from what Redis still has — all of it if
    Redis came back empty — with the same seqs and the same entries.
    """

    def __init__(self, event_log: EventLog, entries: list[Entry]) -> None:
        self.event_log = event_log
        self.entries = entries
        # How many of `entries` Redis is known to hold; they are contiguous from the first.
        self.stored = len(entries)
        self._expire_after_s: int | None = None
        self._restoring: asyncio.Task[None] | None = None

    @classmethod
    async def resume(cls, event_log: EventLog) -> LogWriter:
        """A writer continuing after whatever the log already holds (a retried job, a re-attach, a cancel)."""
        return cls(event_log, await event_log.read_all())

    @property
    def seq(self) -> int:
        """The seq of the newest event, 0 before the first."""
        return self.entries[-1].last if self.entries else 0

    async def lines(self, runs: list[tuple[Stream, list[str], bool]]) -> None:
        """Append output lines given as runs of (stream, texts, partial)."""
        if not runs:
            return
        self.entries.extend(batch_lines(self.seq + 1, _now(), runs))
        OUTPUT_LINES.inc(sum(len(texts) for _, texts, _ in runs))
        await self._store()

    async def artifact(self, artifact_id: UUID, name: str, media_type: str, size_bytes: int, at: datetime) -> None:
        """Append the event of an artifact just stored."""
        self.entries.append(ArtifactEvent(self.seq + 1, artifact_id, name, media_type, size_bytes, at))
        await self._store()

    def status_event(self, status: ExecutionStatus) -> StatusEvent:
        """The next status event, not yet appended (the terminal one is archived first)."""
        return StatusEvent(seq=self.seq + 1, status=status, at=_now())

    async def status(self, event: StatusEvent) -> None:
        """Append a status event made by `status_event`."""
        self.entries.append(event)
        await self._store()

    async def end(self, terminal: StatusEvent, expire_s: int) -> None:
        """Append the terminal status event and let the Redis log go `expire_s` after it (now, or once it is
        restored), in one round trip."""
        self.entries.append(terminal)
        self._expire_after_s = expire_s
        await self._store()

    @property
    def in_redis(self) -> bool:
        """Whether Redis holds every event (as far as this writer knows)."""
        return self._restoring is None and self.stored == len(self.entries)

    async def close(self, timeout_s: float) -> None:
        """Give a running restore up to `timeout_s` to finish, then stop it (PostgreSQL has the record)."""
        # The restore clears `_restoring` when it is done: hold on to the task.
        restoring = self._restoring
        if restoring is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(restoring), timeout_s)
        if not restoring.done():
            missing = len(self.entries) - self.stored
            log.warning("run log not restored in Redis", key=self.event_log.key, missing_entries=missing)
            restoring.cancel()

    async def _store(self) -> None:
        if self._restoring is not None:
            return  # the restore appends everything, this included, once Redis is back
        try:
            await self._append_pending()
        except RedisError as exc:
            log.warning(
                "redis unavailable; keeping the run's events",
                key=self.event_log.key,
                error=type(exc).__name__,
                detail=str(exc)[:200],
            )
            self._restoring = asyncio.create_task(self._restore(), name=f"restore {self.event_log.key}")

    async def _append_pending(self) -> None:
        # The expiry goes with the last page: an ended run's terminal event and expiry are one round trip.
        while True:
            batch = self.entries[self.stored : self.stored + APPEND_PAGE]
            last = self.stored + len(batch) == len(self.entries)
            if not batch and self._expire_after_s is None:
                return
            await self.event_log.append(batch, expire_s=self._expire_after_s if last else None)
            self.stored += len(batch)
            if last:
                return

    async def _restore(self) -> None:
        backoff = Backoff(RESTORE_FIRST_DELAY_S, RESTORE_MAX_DELAY_S)
        while True:
            await backoff.sleep()
            try:
                # Whatever Redis lost (everything, if it came back empty) is appended again, same seqs.
                newest = await self.event_log.last_seq()
                self.stored = bisect.bisect_right(self.entries, newest, key=lambda entry: entry.last)
                await self._append_pending()
            except RedisError:
                continue
            log.info("run log restored in Redis", key=self.event_log.key, entries=len(self.entries))
            self._restoring = None
            return
