"""3. Fan-out: K watchers on one run printing L lines, over real graphql-transport-ws WebSockets.

The run prints `ready` and waits for a line of stdin; the watchers (spread over a few client processes)
subscribe and wait for `ready`, so every subscription is live and idle: then the API's resident memory
is read (its growth / K is the memory per idle subscription) and `sendInput` starts the L lines, each
carrying the time it was printed. Measured: line deliveries per second (K x L over the time from the
first print to the last delivery), the p99 print-to-delivery delay, lines lost or duplicated. Baseline:
the same number of subscribers on raw Redis pub/sub, sent the same L lines by one publisher.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

from redis.asyncio import Redis

from bench import watchers
from bench.context import Bench
from bench.report import Failed, Figure, Section
from bench.watchers import BUCKETS_PER_S, END, READY, Job, Tally

PUBLISH_BATCH = 100
KIB = 1024


def _script(lines: int) -> str:
    return f"import time\nprint({READY!r})\ninput()\nfor i in range({lines}):\n    print(i, time.time())\n"


class Watchers:
    """Client processes that together hold `total` watchers."""

    def __init__(self, job: Job, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes = []
        per_process = [job.watchers // processes + (1 if i < job.watchers % processes else 0) for i in range(processes)]
        for count in filter(None, per_process):
            parent, child = context.Pipe()
            process = context.Process(target=watchers.main, args=(_with_count(job, count), child), daemon=True)
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    async def ready(self) -> int:
        """Until every watcher listens (or gave up); how many do."""
        listening = 0
        for pipe in self.pipes:
            kind, count = await asyncio.to_thread(pipe.recv)
            if kind != "ready":
                raise Failed(f"a watcher process said {kind}")
            listening += count
        return listening

    async def results(self) -> Tally:
        """Every process's tally, summed."""
        total = Tally()
        for pipe in self.pipes:
            _, tally = await asyncio.to_thread(pipe.recv)
            total.delivered += tally.delivered
            total.lost += tally.lost
            total.duplicated += tally.duplicated
            total.failed_watchers += tally.failed_watchers
            total.delays.update(tally.delays)
            total.first_printed = min(total.first_printed, tally.first_printed)
            total.last_received = max(total.last_received, tally.last_received)
            total.statuses.update(tally.statuses)
            total.errors += tally.errors
            total.cpu_s += tally.cpu_s
        for process in self.processes:
            await asyncio.to_thread(process.join)
        return total


def _with_count(job: Job, count: int) -> Job:
    return Job(job.kind, job.url, job.token, job.target, count, job.lines)


def _p99_ms(delays: Counter[int]) -> float:
    total = sum(delays.values())
    rank = max(1, round(0.99 * total))
    for bucket in sorted(delays):
        rank -= delays[bucket]
        if rank <= 0:
            return bucket * 1000 / BUCKETS_PER_S
    return 0.0


def _summary(tally: Tally, watchers_count: int, lines: int) -> dict[str, Any]:
    window = tally.last_received - tally.first_printed
    return {
        "delivered": tally.delivered,
        "expected": watchers_count * lines,
        "lost": tally.lost,
        "duplicated": tally.duplicated,
        "failed_watchers": tally.failed_watchers,
        "deliveries_per_s": round(tally.delivered / window) if window > 0 else 0,
        "p99_delay_ms": round(_p99_ms(tally.delays), 1),
        "seconds": round(window, 3),
        "client_cpu_s": round(tally.cpu_s, 2),
        "errors": tally.errors[:5],
    }


async def _through_podrun(bench: Bench, watchers_count: int, lines: int) -> dict[str, Any]:
    # A user of its own, so its access token (valid 5 minutes) outlives the watchers' connecting: with the first
    # user's, on a busy machine, 5,000 watchers were still connecting after it expired and were refused (4403).
    client = await bench.user()
    execution_id = await client.submit(_script(lines), limits={"wallTimeMs": 300_000})
    api = bench.podrun.api
    rss_before = api.rss_bytes()
    job = Job("podrun", client.ws_url, client.token or "", execution_id, watchers_count, lines)
    group = Watchers(job, min(bench.plan.fanout_client_processes, watchers_count))
    listening = await group.ready()
    rss_idle = api.rss_bytes()
    print(f"  fan-out: {listening} of {watchers_count} watchers listening; API RSS {rss_idle >> 20} MiB")
    cpu_before = api.cpu_seconds()
    started = time.perf_counter()
    await client.send_input(execution_id, "go\n")
    tally = await group.results()
    summary = _summary(tally, watchers_count, lines)
    summary["api_cpu_s"] = round(api.cpu_seconds() - cpu_before, 2)
    summary["wall_s"] = round(time.perf_counter() - started, 2)
    summary["api_kib_per_idle_subscription"] = round((rss_idle - rss_before) / KIB / watchers_count, 1)
    summary["statuses"] = dict(tally.statuses)
    if tally.statuses.get("SUCCEEDED") != watchers_count:
        summary["errors"].append(f"terminal statuses seen: {dict(tally.statuses)}")
    return summary


async def _through_redis(bench: Bench, watchers_count: int, lines: int) -> dict[str, Any]:
    target = bench.podrun.target
    channel = f"{target.redis_prefix}:bench-fanout"
    job = Job("redis", target.redis_url, "", channel, watchers_count, lines)
    group = Watchers(job, min(bench.plan.fanout_client_processes, watchers_count))
    await group.ready()
    publisher = Redis.from_url(target.redis_url)
    try:
        for start in range(0, lines, PUBLISH_BATCH):
            async with publisher.pipeline(transaction=False) as pipe:
                for i in range(start, min(lines, start + PUBLISH_BATCH)):
                    pipe.publish(channel, f"{i} {time.time()}")
                await pipe.execute()
        await publisher.publish(channel, END)
    finally:
        await publisher.aclose()
    return _summary(await group.results(), watchers_count, lines)


async def run(bench: Bench) -> Section:
    """Each (K, L) of the plan through Podrun, then the same on raw Redis pub/sub."""
    figures: list[Figure] = []
    data: dict[str, Any] = {}
    failed = False
    for watchers_count, lines in bench.plan.fanout:
        podrun = await _through_podrun(bench, watchers_count, lines)
        redis = await _through_redis(bench, watchers_count, lines)
        data[f"{watchers_count}x{lines}"] = {"podrun": podrun, "redis_pubsub": redis}
        label = f"K={watchers_count:,} x L={lines:,}"
        if podrun["errors"] or podrun["lost"] or podrun["duplicated"] or podrun["failed_watchers"] or redis["errors"]:
            failed = True
            errors = "; ".join(podrun["errors"] + redis["errors"])[:300]
            figures.append(Figure(f"{label}: FAILED", errors.replace("|", "/")))
        per_api = ">= 100,000/s per API process" if (watchers_count, lines) == (1000, 1000) else ""
        figures += [
            Figure(
                f"{label}: deliveries/s",
                f"{podrun['deliveries_per_s']:,}",
                f"{redis['deliveries_per_s']:,} Redis pub/sub",
                per_api,
            ),
            Figure(f"{label}: p99 print -> delivery (ms)", f"{podrun['p99_delay_ms']:,}", f"{redis['p99_delay_ms']:,}"),
            Figure(
                f"{label}: watchers whose subscription failed",
                f"{podrun['failed_watchers']:,}",
                f"{redis['failed_watchers']:,}",
                "0",
            ),
            Figure(
                f"{label}: lines lost / duplicated (completed subscriptions)",
                f"{podrun['lost']} / {podrun['duplicated']}",
                f"{redis['lost']} / {redis['duplicated']}",
                "0 / 0",
            ),
            Figure(
                f"{label}: API memory per idle subscription (KiB)",
                f"{podrun['api_kib_per_idle_subscription']:,}",
                "",
                "<= 50" if watchers_count >= 1000 else "",
            ),
            Figure(
                f"{label}: CPU s, API / watcher processes",
                f"{podrun['api_cpu_s']} / {podrun['client_cpu_s']}",
                f"- / {redis['client_cpu_s']}",
            ),
        ]
    return Section("3. Fan-out: K watchers of one run printing L lines", figures, data, failed=failed)
