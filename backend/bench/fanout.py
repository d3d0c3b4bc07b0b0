"""Live fan-out: one execution event_log followed by many subscribers through StreamHub and follow().

A writer process appends N output lines with LogWriter (in batches, as a worker does) and a terminal
status; S subscribers in this process follow the log from afterSeq 0. We measure events delivered per
second, the latency from append to delivery, and how many Redis connections the subscribing side
opened. The baselines are what the hub exists to beat or approach: one plain XREAD loop on one
connection reading the same events (the most a single consumer can get out of Redis), and the S
connections that one blocking XREAD per subscriber would hold.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
import uuid
from array import array
from uuid import UUID

from redis.asyncio import Redis

from bench.report import Failed, Figure, percentile
from podrun.core.output import Stream
from podrun.core.statuses import ExecutionStatus
from podrun.redis_client import Keys, create_redis
from podrun.settings import get_settings
from podrun.streams.events import Event, is_terminal
from podrun.streams.follow import follow
from podrun.streams.hub import StreamHub
from podrun.streams.log import REPLAY_PAGE, EventLog, LogWriter

EVENTS = 20_000
BATCH = 100
SUBSCRIBERS = 200
SUBSCRIBER_ROLE = "bench-subscribers"
SAMPLE_S = 0.05
PROGRESS_CHECK_S = 1.0
# Longer than follow()'s IDLE_CHECK_S, so a subscriber that recovers by itself is not called stalled.
STALL_S = 20.0


class _Received:
    """What one subscriber saw: whether seqs came 1, 2, 3... exactly once, and each one's latency."""

    def __init__(self) -> None:
        self.next_seq = 1
        self.errors: list[str] = []
        self.latencies = array("d")
        self.first_appended = 0.0
        self.last_appended = 0.0
        self.last_at = 0.0

    def take(self, events: list[Event], now: float) -> None:
        for event in events:
            if event.seq != self.next_seq and len(self.errors) < 5:
                self.errors.append(f"expected seq {self.next_seq}, got {event.seq}")
            appended = event.at.timestamp()
            if event.seq == 1:
                self.first_appended = appended
            self.last_appended = appended
            self.next_seq = event.seq + 1
            self.latencies.append(now - appended)
        self.last_at = now


class _CountingLog(EventLog):
    """The event_log as follow() reads it, counting events it had to re-read from Redis itself."""

    replayed = 0

    async def read_after(self, seq: int, count: int = REPLAY_PAGE) -> list[Event]:
        events = await super().read_after(seq, count)
        self.replayed += len(events)
        return events


async def _no_archive() -> list[Event] | None:
    return None


async def _subscribe(hub: StreamHub, event_log: EventLog, received: _Received) -> None:
    async for batch in follow(hub, event_log, 0, _no_archive):
        received.take(batch, time.time())
        if is_terminal(batch[-1]):
            break


def _write_process(execution_id: str, events: int) -> None:
    asyncio.run(_write(UUID(execution_id), events))


async def _write(execution_id: UUID, events: int) -> None:
    """The worker side: N lines in batches of BATCH, then the terminal status."""
    settings = get_settings()
    redis = await create_redis(settings, "bench-writer")
    writer = LogWriter(EventLog(redis, Keys(settings.redis_prefix), execution_id), 0)
    for start in range(0, events, BATCH):
        await writer.lines([(Stream.STDOUT, f"line {i:06d} " + "x" * 60, False) for i in range(start, start + BATCH)])
    await writer.status(writer.status_event(ExecutionStatus.SUCCEEDED))
    await redis.aclose()


async def _count_connections(admin: Redis, name: str, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        clients = await admin.client_list()
        peak[0] = max(peak[0], sum(1 for client in clients if client.get("name") == name))
        await asyncio.sleep(SAMPLE_S)


async def _wait_while_progressing(subscribers: list[asyncio.Task[None]], received: list[_Received]) -> None:
    """Wait for every subscriber to finish; fail if delivery stalls (a lost wake-up or event)."""
    delivered, stalled_s = -1, 0.0
    pending = set(subscribers)
    while pending:
        _, pending = await asyncio.wait(pending, timeout=PROGRESS_CHECK_S)
        now_delivered = sum(r.next_seq for r in received)
        stalled_s = stalled_s + PROGRESS_CHECK_S if now_delivered == delivered else 0.0
        if stalled_s >= STALL_S:
            raise Failed(f"delivery stalled for {STALL_S:.0f} s with {len(pending)} subscribers unfinished")
        delivered = now_delivered
    for subscriber in subscribers:
        subscriber.result()  # re-raise what a subscriber died of


async def _raw_xread(redis: Redis, key: str) -> float:
    """Seconds one XREAD loop on one connection takes to read the whole log."""
    cursor, read = "0-0", 0
    started = time.perf_counter()
    while read < EVENTS + 1:
        response = await redis.xread({key: cursor}, count=1000, block=1000)
        if not response:
            raise Failed(f"the log holds {read} events, {EVENTS + 1} were appended")
        for _, entries in response:
            read += len(entries)
            cursor = entries[-1][0]
    return time.perf_counter() - started


async def run() -> list[Figure]:
    """Run the fan-out benchmark and return its figures; raise Failed on lost or repeated events."""
    settings = get_settings()
    keys = Keys(settings.redis_prefix)
    execution_id = uuid.uuid4()
    admin = await create_redis(settings, "bench-admin")
    subscriber_redis = await create_redis(settings, SUBSCRIBER_ROLE)
    # create_redis names every connection after its role and process, so CLIENT LIST can count them.
    client_name = f"{settings.redis_prefix}-{SUBSCRIBER_ROLE}-{os.getpid()}"
    hub = StreamHub(subscriber_redis, keys)
    event_log = _CountingLog(subscriber_redis, keys, execution_id)
    received = [_Received() for _ in range(SUBSCRIBERS)]
    peak, stop = [0], asyncio.Event()
    writer = multiprocessing.get_context("spawn").Process(target=_write_process, args=(str(execution_id), EVENTS))
    await hub.start()
    subscribers = [asyncio.create_task(_subscribe(hub, event_log, r)) for r in received]
    counter = asyncio.create_task(_count_connections(admin, client_name, peak, stop))
    try:
        await asyncio.sleep(0.2)  # let every subscriber replay the empty log and start waiting
        writer.start()
        await _wait_while_progressing(subscribers, received)
        stop.set()
        await counter
        await asyncio.to_thread(writer.join, 30)
        raw_s = await _raw_xread(admin, event_log.key)
    finally:
        for task in [*subscribers, counter]:
            task.cancel()
        await asyncio.gather(*subscribers, counter, return_exceptions=True)
        if writer.is_alive():
            writer.terminate()
        await hub.stop()
        await admin.delete(event_log.key)
        for redis in (admin, subscriber_redis):
            await redis.aclose()
            await redis.connection_pool.disconnect()

    errors = [error for r in received for error in r.errors]
    errors += [f"ended after seq {r.next_seq - 1}" for r in received if r.next_seq != EVENTS + 2]
    if writer.exitcode != 0:
        errors.append(f"writer exited with {writer.exitcode}")
    if errors:
        raise Failed(f"{len(errors)} delivery errors, e.g. {errors[:3]}")

    first_at = received[0].first_appended
    per_subscriber = sorted((EVENTS + 1) / (r.last_at - first_at) for r in received)
    window = max(r.last_at for r in received) - first_at
    latencies = [latency * 1000 for r in received for latency in r.latencies]
    raw_rate = (EVENTS + 1) / raw_s
    writer_s = received[0].last_appended - first_at
    return [
        # `at` has millisecond resolution, hence the floor of 1 ms.
        Figure("writer append rate (events/s)", f"{(EVENTS + 1) / max(writer_s, 0.001):,.0f}"),
        Figure(
            "events/s per subscriber (median)",
            f"{per_subscriber[len(per_subscriber) // 2]:,.0f}",
            f"{raw_rate:,.0f} one raw XREAD loop",
        ),
        Figure(
            "events/s delivered in total",
            f"{SUBSCRIBERS * (EVENTS + 1) / window:,.0f}",
            f"{raw_rate:,.0f} one raw XREAD loop",
        ),
        Figure("latency append->delivery p50 (ms)", f"{percentile(latencies, 0.5):.1f}"),
        Figure("latency append->delivery p99 (ms)", f"{percentile(latencies, 0.99):.1f}"),
        Figure(
            "events re-read by lagging subscribers",
            f"{event_log.replayed:,}",
            f"{SUBSCRIBERS * (EVENTS + 1):,} delivered",
        ),
        Figure(
            "subscriber-side Redis connections (peak)", str(peak[0]), f"{SUBSCRIBERS} with one XREAD per subscriber"
        ),
    ]
