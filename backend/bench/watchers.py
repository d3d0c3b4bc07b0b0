"""The watching side of the fan-out benchmark, run in client processes of its own (so one event loop parsing
every message of thousands of sockets is not the limit): Podrun watchers on graphql-transport-ws, or the
baseline's raw Redis pub/sub subscribers. Each line carries its index and the time it was printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from redis.asyncio import Redis
from websockets.asyncio.client import connect

from bench.client import EVENTS

READY = "ready"
END = "end"
# Delays are counted in buckets of 0.1 ms: exact enough for a p99, small enough to send back.
BUCKETS_PER_S = 10_000
# Subscriptions being set up at once per client process (each costs the API a database lookup).
CONNECTING_AT_ONCE = 20
WATCH_TIMEOUT_S = 600.0
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Job:
    """What one client process watches: `watchers` subscribers of one run (Podrun) or one channel (Redis)."""

    kind: str  # "podrun" or "redis"
    url: str
    token: str
    target: str  # the execution id, or the Redis channel
    watchers: int
    lines: int


@dataclass(slots=True)
class Tally:
    """What the watchers of one process saw."""

    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    delays: Counter[int] = field(default_factory=Counter)
    first_printed: float = float("inf")
    last_received: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    cpu_s: float = 0.0
    # Watchers whose subscription failed or never ended (their errors say why); their lines are not "lost".
    failed_watchers: int = 0

    def line(self, seen: bytearray, text: str, now: float) -> None:
        """Count one delivered line `index printed_at`."""
        index, printed = text.split()
        at = float(printed)
        seen[int(index)] += 1
        self.delivered += 1
        self.delays[int((now - at) * BUCKETS_PER_S)] += 1
        self.first_printed = min(self.first_printed, at)
        self.last_received = max(self.last_received, now)

    def close(self, seen: bytearray, completed: bool) -> None:
        """Count the lines a watcher whose subscription completed never saw or saw twice; or count it as failed."""
        if not completed:
            self.failed_watchers += 1
            return
        self.lost += seen.count(0)
        self.duplicated += sum(count - 1 for count in seen if count > 1)


def main(job: Job, pipe: Connection) -> None:
    """Entry point of a client process: report ("ready", n) once every watcher listens, then ("done", Tally)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tally = asyncio.run(_watch_all(job, pipe))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    tally.cpu_s = usage.ru_utime + usage.ru_stime
    pipe.send(("done", tally))


async def _watch_all(job: Job, pipe: Connection) -> Tally:
    tally = Tally()
    ready = asyncio.Semaphore(0)
    connecting = asyncio.Semaphore(CONNECTING_AT_ONCE)
    watch = _podrun_watcher if job.kind == "podrun" else _redis_watcher
    tasks = [asyncio.create_task(watch(job, tally, ready, connecting)) for _ in range(job.watchers)]
    listening = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(READY_TIMEOUT_S):
            for _ in range(job.watchers):
                await ready.acquire()
                listening += 1
    if listening < job.watchers:
        tally.errors.append(
            f"{job.watchers - listening} of {job.watchers} watchers not listening after {READY_TIMEOUT_S:.0f} s"
        )
    pipe.send(("ready", listening))
    done, _ = await asyncio.wait(tasks, timeout=WATCH_TIMEOUT_S)
    for task in tasks:
        if task not in done:
            task.cancel()
            tally.errors.append("a watcher did not finish in time")
        elif task.exception() is not None:
            tally.errors.append(repr(task.exception()))
    return tally


@contextlib.asynccontextmanager
async def _counted_if_failing(ready: asyncio.Semaphore) -> AsyncIterator[None]:
    """A watcher that fails to connect counts as settled (its error is reported), so the others can start."""
    try:
        yield
    except BaseException:
        ready.release()
        raise


async def _podrun_watcher(job: Job, tally: Tally, ready: asyncio.Semaphore, connecting: asyncio.Semaphore) -> None:
    seen = bytearray(job.lines)
    listening = completed = False
    await connecting.acquire()
    try:
        socket = await connect(job.url, subprotocols=["graphql-transport-ws"], max_size=None, open_timeout=120)  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {job.token}"}}
        await socket.send(json.dumps(init))
        await socket.recv()
        payload = {"query": EVENTS, "variables": {"id": job.target}}
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        async for raw in socket:
            now = time.time()
            message: dict[str, Any] = json.loads(raw)
            if message["type"] == "complete":
                completed = True
                break
            if message["type"] != "next" or message["payload"].get("errors"):
                tally.errors.append(str(message)[:300])
                break
            event = message["payload"]["data"]["executionEvents"]
            if "status" in event:
                tally.statuses[event["status"]] += 1
                continue
            for line in event["lines"]:
                if line["text"] == READY:
                    # Subscribing is paced (CONNECTING_AT_ONCE): this is about delivery, not a subscribe storm.
                    listening = True
                    connecting.release()
                    ready.release()
                else:
                    tally.line(seen, line["text"], now)
        await socket.close()
    finally:
        if not listening:
            connecting.release()
            ready.release()
        tally.close(seen, completed)


async def _redis_watcher(job: Job, tally: Tally, ready: asyncio.Semaphore, connecting: asyncio.Semaphore) -> None:
    seen = bytearray(job.lines)
    completed = False
    client = Redis.from_url(job.url)
    pubsub = client.pubsub()
    try:
        async with connecting, _counted_if_failing(ready):
            await pubsub.subscribe(job.target)
        async for message in pubsub.listen():
            now = time.time()
            if message["type"] == "subscribe":
                ready.release()
            elif message["type"] == "message":
                text = message["data"].decode()
                if text == END:
                    completed = True
                    break
                tally.line(seen, text, now)
    finally:
        await pubsub.aclose()
        await client.aclose()
        tally.close(seen, completed)
