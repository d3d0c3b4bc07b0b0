"""Following a event_log through the hub against real Redis: exactly once and in order, whatever the timing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from arq.connections import ArqRedis

from podrun.core.output import Stream
from podrun.core.statuses import ExecutionStatus
from podrun.redis_client import Keys, create_redis
from podrun.settings import Settings
from podrun.streams import hub as hub_module
from podrun.streams.events import Entry, Event, LineEvent, StatusEvent, unfold
from podrun.streams.follow import follow
from podrun.streams.hub import StreamHub
from podrun.streams.log import EventLog, LogWriter


@pytest.fixture
async def redis() -> AsyncIterator[ArqRedis]:
    client = await create_redis(Settings(), "test")
    yield client
    await client.aclose()


@pytest.fixture
async def hub(redis: ArqRedis) -> AsyncIterator[StreamHub]:
    stream_hub = StreamHub(redis, Keys(Settings().redis_prefix))
    await stream_hub.start()
    yield stream_hub
    await stream_hub.stop()


def new_log(redis: ArqRedis) -> EventLog:
    return EventLog(redis, Keys(Settings().redis_prefix), uuid.uuid4())


async def no_archive() -> list[Event] | None:
    return None


async def write_run(event_log: EventLog, lines: int, pause_every: int = 0) -> None:
    writer = await LogWriter.resume(event_log)
    await writer.status(writer.status_event(ExecutionStatus.RUNNING))
    for start in range(0, lines, 100):
        await writer.lines([(Stream.STDOUT, [str(i) for i in range(start, min(start + 100, lines))], False)])
        if pause_every and start % pause_every == 0:
            await asyncio.sleep(0.001)
    await writer.status(writer.status_event(ExecutionStatus.SUCCEEDED))


async def seqs_of(hub: StreamHub, event_log: EventLog, after: int = 0, slow: bool = False) -> list[int]:
    seen: list[int] = []
    async for batch in follow(hub, event_log, after, no_archive):
        seen.extend(event.seq for event in unfold(batch))
        if slow:  # long enough for the hub to deliver several reads (an append of 100 lines is one entry)
            await asyncio.sleep(0.05)
    return seen


async def test_live_followers_get_every_event_once_in_order(hub: StreamHub, redis: ArqRedis) -> None:
    event_log = new_log(redis)
    followers = [asyncio.create_task(seqs_of(hub, event_log, after)) for after in (0, 0, 5)]
    await asyncio.sleep(0.05)
    await write_run(event_log, 2000, pause_every=300)
    results = await asyncio.wait_for(asyncio.gather(*followers), 30)
    total = 2000 + 2
    assert results == [list(range(1, total + 1)), list(range(1, total + 1)), list(range(6, total + 1))]
    assert hub.watched == 0


async def test_a_follower_that_falls_behind_catches_up_from_redis(
    hub: StreamHub, redis: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "QUEUE_SIZE", 2)
    overflows = 0
    deliver = hub_module.Subscription.deliver

    def counting_deliver(self: hub_module.Subscription, entries: list[Entry]) -> None:
        nonlocal overflows
        overflows += self.full()
        deliver(self, entries)

    monkeypatch.setattr(hub_module.Subscription, "deliver", counting_deliver)
    event_log = new_log(redis)
    follower = asyncio.create_task(seqs_of(hub, event_log, slow=True))
    await asyncio.sleep(0.05)
    await write_run(event_log, 3000, pause_every=100)
    assert await asyncio.wait_for(follower, 60) == list(range(1, 3003))
    assert overflows > 0  # the follower really fell behind and caught up from Redis


async def test_a_late_follower_replays_then_ends(hub: StreamHub, redis: ArqRedis) -> None:
    event_log = new_log(redis)
    await write_run(event_log, 250)
    assert await seqs_of(hub, event_log, after=100) == list(range(101, 253))


async def test_an_expired_log_is_served_from_the_archive(hub: StreamHub, redis: ArqRedis) -> None:
    event_log = new_log(redis)
    now = datetime.now(UTC)
    archived: list[Event] = [
        StatusEvent(seq=1, status=ExecutionStatus.RUNNING, at=now),
        LineEvent(seq=2, stream=Stream.STDOUT, text="kept", at=now),
        StatusEvent(seq=3, status=ExecutionStatus.SUCCEEDED, at=now),
    ]

    async def archive() -> list[Event] | None:
        return archived

    batches = [batch async for batch in follow(hub, event_log, 1, archive)]
    assert [event for batch in batches for event in batch] == archived[1:]


@pytest.mark.parametrize("after", [3, 10])
async def test_a_follower_after_the_end_of_a_finished_run_ends_at_once(
    hub: StreamHub, redis: ArqRedis, after: int
) -> None:
    log = new_log(redis)
    await write_run(log, 1)  # RUNNING, one line, SUCCEEDED: seq 1 to 3
    archived = await log.read_all()

    async def archive() -> list[Entry] | None:
        return archived

    assert [batch async for batch in follow(hub, log, after, archive)] == []


async def test_a_follower_of_a_live_run_does_not_ask_the_archive_on_subscribing(
    hub: StreamHub, redis: ArqRedis
) -> None:
    event_log = new_log(redis)
    writer = await LogWriter.resume(event_log)
    await writer.status(writer.status_event(ExecutionStatus.RUNNING))
    await writer.lines([(Stream.STDOUT, ["first"], False)])
    asked = 0

    async def counting_archive() -> list[Event] | None:
        nonlocal asked
        asked += 1
        return None

    async def follow_all() -> list[int]:
        return [event.seq async for batch in follow(hub, event_log, 0, counting_archive) for event in batch]

    follower = asyncio.create_task(follow_all())
    await asyncio.sleep(0.05)
    await writer.lines([(Stream.STDOUT, ["second"], False)])
    await writer.status(writer.status_event(ExecutionStatus.SUCCEEDED))
    assert await asyncio.wait_for(follower, 30) == [1, 2, 3, 4]
    assert asked == 0


async def test_a_follower_of_a_run_not_ended_by_its_row_does_not_ask_the_archive_before_it_starts(
    hub: StreamHub, redis: ArqRedis
) -> None:
    event_log = new_log(redis)  # queued: nothing in the log yet
    asked = 0

    async def counting_archive() -> list[Event] | None:
        nonlocal asked
        asked += 1
        return None

    async def follow_all() -> list[int]:
        batches = follow(hub, event_log, 0, counting_archive, ended=False)
        return [event.seq async for batch in batches for event in unfold(batch)]

    follower = asyncio.create_task(follow_all())
    await asyncio.sleep(0.05)
    await write_run(event_log, 2)
    assert await asyncio.wait_for(follower, 30) == [1, 2, 3, 4]
    assert asked == 0
