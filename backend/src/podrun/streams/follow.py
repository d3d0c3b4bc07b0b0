"""Following one execution's log: replay after `afterSeq`, then live, until the terminal status.

Sources, in order of preference: the Redis log (replay), the process's hub (live), and the
archive in PostgreSQL once Redis has let the log expire. Whatever the source, the subscriber
keeps a cursor and emits each seq exactly once, in order: anything at or below the cursor is
dropped, and a gap is filled from Redis before going on. Lines stay in their stored batches
(a batch that starts at or before the cursor is cut after it): nothing here costs a line.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

from podrun.core.errors import Unavailable
from podrun.streams.events import Entry, LineBatch, is_terminal
from podrun.streams.hub import StreamHub, Subscription
from podrun.streams.log import REPLAY_PAGE, EventLog

# While a run is quiet, check this often whether it ended without the log saying so (crash windows).
IDLE_CHECK_S = 15.0
# Seqs handed over at most per batch of live entries (as many as one read of the hub).
MAX_BATCH = 50_000
INTERRUPTED = "live output was interrupted (its store is unavailable); subscribe again with afterSeq to resume"
INTERRUPTED_RETRY_MS = 1000

# Returns the archived entries of a finished run, or None while it has not finished.
ArchiveLoader = Callable[[], Awaitable[list[Entry] | None]]


class _Cursor:
    def __init__(self, after_seq: int) -> None:
        self.seq = after_seq
        self.done = False

    def take(self, entries: list[Entry]) -> list[Entry]:
        """The entries that continue the cursor without a gap (a batch cut after it); stops at a gap or the
        terminal event."""
        taken: list[Entry] = []
        for entry in entries:
            if self.done or entry.seq > self.seq + 1:
                break
            if entry.last <= self.seq:
                continue
            fresh = entry
            if isinstance(entry, LineBatch) and entry.seq <= self.seq:
                fresh = entry.split(self.seq + 1 - entry.seq)[1]
            taken.append(fresh)
            self.seq = entry.last
            self.done = is_terminal(entry)
        return taken


async def follow(
    hub: StreamHub, event_log: EventLog, after_seq: int, load_archive: ArchiveLoader, *, ended: bool | None = None
) -> AsyncIterator[list[Entry]]:
    """Yield batches of consecutive entries holding the events after `after_seq`, ending with the terminal status.

    `ended` is whether the run had ended when the caller read its row just before (None: not read). A run that
    had not needs no archive query on subscribing: its events reach the Redis log, or the archive is asked after
    a quiet spell, as for a run still going by its log.
    """
    cursor = _Cursor(after_seq)
    async with hub.subscribe(event_log.key) as subscription:
        catch_up = first = True
        while not cursor.done:
            if catch_up:
                async for batch in _replay(event_log, cursor):
                    yield batch
                # A run still going by its Redis log needs no archive query on subscribing (with thousands of
                # watchers, that query was the API's largest cost); quiet spells still ask the archive, for a run
                # that ended in a crash window without its terminal status reaching Redis.
                skip_archive = cursor.done or (first and (ended is False or await _still_going(event_log)))
                first = False
                archived = None if skip_archive else await load_archive()
                if archived is not None:
                    for page in _pages(archived, cursor.seq):
                        if batch := cursor.take(page):
                            yield batch
                    # The archive is a finished run's whole log: what it did not continue is at or before
                    # afterSeq (a follower asking after the terminal status), and nothing more will come.
                    cursor.done = True
            if cursor.done:
                break
            catch_up = not await _wait(subscription)
            if subscription.broken:
                raise Unavailable(INTERRUPTED, retry_after_ms=INTERRUPTED_RETRY_MS)
            entries = _drain(subscription)
            if subscription.lagged or (entries and entries[0].seq > cursor.seq + 1):
                subscription.lagged = False
                async for batch in _replay(event_log, cursor):
                    yield batch
            if batch := cursor.take(entries):
                yield batch


def _pages(entries: list[Entry], after_seq: int) -> Iterator[list[Entry]]:
    """The entries holding events after `after_seq`, a page at a time (an archive may hold a million lines), pages
    as large as the Redis log's."""
    fresh = [entry for entry in entries if entry.last > after_seq]
    for start in range(0, len(fresh), REPLAY_PAGE):
        yield fresh[start : start + REPLAY_PAGE]


async def _still_going(event_log: EventLog) -> bool:
    newest = await event_log.newest()
    return newest is not None and not is_terminal(newest)


async def _replay(event_log: EventLog, cursor: _Cursor) -> AsyncIterator[list[Entry]]:
    while not cursor.done:
        page = await event_log.entries_after(cursor.seq)
        batch = cursor.take(page)
        if not batch:
            return
        yield batch


async def _wait(subscription: Subscription) -> bool:
    """Wait for the hub to deliver something; False after a quiet spell."""
    if subscription.queue or subscription.lagged or subscription.broken:
        return True
    subscription.signal.clear()
    try:
        # Not wait_for: it would wrap the wait in a task of its own, held by every idle subscriber.
        async with asyncio.timeout(IDLE_CHECK_S):
            await subscription.signal.wait()
    except TimeoutError:
        return False
    return True


def _drain(subscription: Subscription) -> list[Entry]:
    entries: list[Entry] = []
    while subscription.queue and (not entries or entries[-1].last - entries[0].seq < MAX_BATCH):
        entries.extend(subscription.queue.popleft())
    return entries
