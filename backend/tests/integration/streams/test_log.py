"""The writer's copy of a run's log in batches against real Redis: appended as batches, restored as batches."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis
from redis.asyncio import Redis

from podrun.core.output import Stream
from podrun.core.statuses import ExecutionStatus
from podrun.redis_client import Keys, create_redis
from podrun.settings import Settings
from podrun.streams.events import Entry, LineBatch, to_fields, unfold
from podrun.streams.log import EventLog, LogWriter, entry_id


def stored(entries: list[Entry]) -> list[tuple[int, dict[str, bytes]]]:
    """Each entry as Redis stores it."""
    return [(entry.last, to_fields(entry)) for entry in entries]


@pytest.fixture
async def redis() -> AsyncIterator[ArqRedis]:
    client = await create_redis(Settings(), "test")
    yield client
    await client.aclose()


async def test_lines_are_appended_as_batches_and_a_replay_may_start_inside_one(redis: ArqRedis) -> None:
    event_log = EventLog(redis, Keys(Settings().redis_prefix), uuid.uuid4())
    writer = LogWriter(event_log, [])
    await writer.status(writer.status_event(ExecutionStatus.RUNNING))
    await writer.lines([(Stream.STDOUT, [""] * 2500, False), (Stream.STDERR, ["tail"], True)])
    # One entry per batch of up to 1,000 lines, its id the seq of its last line.
    ids = [raw.decode() for raw, _ in await redis.xrange(event_log.key)]
    assert ids == [entry_id(seq) for seq in (1, 1001, 2001, 2502)]
    assert stored(await event_log.entries_after(0)) == stored(writer.entries)
    # After 1500: from the start of the batch holding 1501 (seqs 1002 to 2001); the reader drops what it saw.
    assert [entry.seq for entry in await event_log.entries_after(1500)][:2] == [1002, 2002]
    await redis.delete(event_log.key)


@pytest.mark.parametrize("kept", [0, 2])
async def test_a_writer_restores_the_batches_redis_lost_with_the_same_seqs(redis: ArqRedis, kept: int) -> None:
    event_log = EventLog(redis, Keys(Settings().redis_prefix), uuid.uuid4())
    writer = LogWriter(event_log, [])
    await writer.status(writer.status_event(ExecutionStatus.RUNNING))
    await writer.lines([(Stream.STDOUT, [str(i) for i in range(2500)], False)])
    # Redis came back with `kept` entries of the log, and the next append found it away.
    await redis.delete(event_log.key)
    await event_log.append(writer.entries[:kept])
    event_log.redis = Redis.from_url("redis://127.0.0.1:1/0")  # nothing listens there
    await writer.lines([(Stream.STDOUT, ["while away"], False)])
    assert not writer.in_redis
    event_log.redis = redis
    await writer.close(30)
    assert writer.in_redis
    restored = await event_log.read_all()
    assert stored(restored) == stored(writer.entries)
    assert all(isinstance(entry, LineBatch) for entry in restored[1:])
    events = list(unfold(restored))
    assert [event.seq for event in events] == list(range(1, 2503))
    assert events[-1].text == "while away"  # type: ignore[union-attr]
    await redis.delete(event_log.key)
