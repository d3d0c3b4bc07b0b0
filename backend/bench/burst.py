"""5. A burst: N `print('hi')` runs submitted at once (by N/5 users), each followed to its end.

Measured: the drain time (from the burst to the last terminal status), and the wait of the run that
started last (its `startedAt` minus its `createdAt`, both Podrun's own clock). Baseline: N bare
sandbox commands at the worker's concurrency: the time until the last one exits, and when the last
one started.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from bench.client import Client
from bench.context import Bench
from bench.report import Failed, Figure, Section, ms
from bench.runs import HELLO

RUNS_PER_USER = 5


async def _follow(client: Client, execution_id: str) -> str:
    socket = await client.socket()
    try:
        status = ""
        async for event in socket.events(execution_id):
            status = event.get("status", status)
        return status
    finally:
        await socket.close()


async def _bare_burst(bench: Bench, runs: int) -> tuple[float, float]:
    """Seconds until the last of `runs` bare sandboxes exits, and until the last one started."""
    slots = asyncio.Semaphore(bench.worker_concurrency)
    started = time.perf_counter()
    last_start = 0.0

    async def one() -> None:
        nonlocal last_start
        async with slots:
            last_start = max(last_start, time.perf_counter() - started)
            await bench.bare.sandbox_run(HELLO)

    await asyncio.gather(*(one() for _ in range(runs)))
    return time.perf_counter() - started, last_start


async def run(bench: Bench) -> Section:
    """The burst through Podrun, then through the bare sandbox command."""
    runs = bench.plan.burst_runs
    users = [await bench.user() for _ in range(max(1, runs // RUNS_PER_USER))]
    clients = [users[i % len(users)] for i in range(runs)]
    started = time.perf_counter()
    ids = await asyncio.gather(*(client.submit(HELLO) for client in clients))
    submitted = time.perf_counter() - started
    statuses = await asyncio.gather(*(_follow(c, i) for c, i in zip(clients, ids, strict=True)))
    drain = time.perf_counter() - started
    if set(statuses) != {"SUCCEEDED"}:
        raise Failed(f"burst statuses: {statuses}")
    executions = await asyncio.gather(*(c.execution(i) for c, i in zip(clients, ids, strict=True)))
    waits = [_seconds(e["startedAt"]) - _seconds(e["createdAt"]) for e in executions]
    bare_drain, bare_last_start = await _bare_burst(bench, runs)
    figures = [
        Figure(
            f"{runs} runs: drain time (ms)",
            ms(drain),
            f"{ms(bare_drain)} bare sandbox, {bench.worker_concurrency} at a time",
        ),
        Figure(
            "the last run's wait, created -> started (ms)",
            ms(max(waits)),
            f"{ms(bare_last_start)} the last bare one's start",
        ),
        Figure(f"all {runs} submit mutations answered (ms)", ms(submitted), ""),
    ]
    data = {
        "runs": runs,
        "drain_ms": round(drain * 1000, 1),
        "last_wait_ms": round(max(waits) * 1000, 1),
        "submitted_ms": round(submitted * 1000, 1),
        "bare_drain_ms": round(bare_drain * 1000, 1),
        "bare_last_start_ms": round(bare_last_start * 1000, 1),
    }
    return Section("5. Burst: runs submitted at once", figures, data)


def _seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()
