"""2. Throughput at saturation: several users keep `print('hi')` runs in flight for a fixed time.

Each user keeps a few runs going (submit, follow to the end, submit the next), more in all than the
worker's concurrency, so the queue never runs dry. Counted: runs that ended within the window. The
baseline is the bare sandbox command, as many at a time as the worker's concurrency, for the same time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from bench.client import Client, Socket
from bench.context import Bench
from bench.report import Figure, Section
from bench.runs import HELLO, timed_run


async def _saturate(lanes: list[Callable[[], Awaitable[object]]], seconds: float) -> float:
    """Run each lane's job over and over for `seconds`; jobs finished per second."""
    deadline = time.perf_counter() + seconds
    finished = 0

    async def lane(job: Callable[[], Awaitable[object]]) -> None:
        nonlocal finished
        while time.perf_counter() < deadline:
            await job()
            if time.perf_counter() <= deadline:
                finished += 1

    started = time.perf_counter()
    await asyncio.gather(*(lane(job) for job in lanes))
    return finished / min(seconds, time.perf_counter() - started)


def _lane(client: Client, socket: Socket) -> Callable[[], Awaitable[object]]:
    return lambda: timed_run(client, socket)


async def run(bench: Bench) -> Section:
    """Runs per second through Podrun, then through the bare sandbox command at the worker's concurrency."""
    plan = bench.plan
    lanes = []
    sockets: list[Socket] = []
    for _ in range(plan.throughput_users):
        client = await bench.user()
        for _ in range(plan.throughput_in_flight_per_user):
            sockets.append(await client.socket())
            lanes.append(_lane(client, sockets[-1]))
    api, worker = bench.podrun.api, bench.podrun.worker
    cpu_before = [api.cpu_seconds(), worker.cpu_seconds()]
    try:
        podrun_rate = await _saturate(lanes, plan.throughput_s)
        cpu = [api.cpu_seconds() - cpu_before[0], worker.cpu_seconds() - cpu_before[1]]
    finally:
        for socket in sockets:
            await socket.close()
    runs = max(1.0, podrun_rate * plan.throughput_s)
    bare_lanes: list[Callable[[], Awaitable[object]]] = [
        lambda: bench.bare.sandbox_run(HELLO) for _ in range(bench.worker_concurrency)
    ]
    bare_rate = await _saturate(bare_lanes, plan.throughput_s)
    figures = [
        Figure(
            f"runs completed/s ({plan.throughput_users} users, {len(lanes)} in flight, {plan.throughput_s:.0f} s)",
            f"{podrun_rate:.1f}",
            f"{bare_rate:.1f} bare sandbox command, {bench.worker_concurrency} at a time",
            ">= 0.5 x bare",
        ),
        Figure("Podrun / bare", f"{podrun_rate / bare_rate:.2f}", "", ">= 0.5"),
        Figure("CPU seconds per run, API / worker process", f"{cpu[0] / runs:.3f} / {cpu[1] / runs:.3f}", ""),
    ]
    data = {
        "seconds": plan.throughput_s,
        "users": plan.throughput_users,
        "in_flight": len(lanes),
        "worker_concurrency": bench.worker_concurrency,
        "runs_per_s": round(podrun_rate, 2),
        "bare_sandbox_runs_per_s": round(bare_rate, 2),
        "api_cpu_s": round(cpu[0], 2),
        "worker_cpu_s": round(cpu[1], 2),
    }
    return Section("2. Throughput at saturation", figures, data)
