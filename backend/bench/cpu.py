"""Server CPU per run: `print('hi')` submitted over HTTP and watched over a subscription, one run after another.

The API's and the worker's CPU time (/proc/<pid>/stat, user + system) is read before and after the series;
the difference over the runs is each process's CPU per run — everything the platform spends on one run,
its idle work meanwhile included (heartbeats, the pool's refills). Baseline in the same run: the CPU the
bare sandbox command takes per run (its children's user + system time, as this process waits for them).
"""

from __future__ import annotations

import resource
import time

from bench.context import Bench
from bench.report import Figure, Section
from bench.runs import HELLO, timed_run

TARGET_MS = 8.0


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def run(bench: Bench) -> Section:
    """A series through Podrun, then as many bare sandbox runs."""
    runs = bench.plan.cpu_runs
    await bench.settle()
    client = await bench.first_user()
    socket = await client.socket()
    api, worker = bench.podrun.api, bench.podrun.worker
    try:
        started = time.perf_counter()
        before = (api.cpu_seconds(), worker.cpu_seconds())
        for _ in range(runs):
            await timed_run(client, socket)
        after = (api.cpu_seconds(), worker.cpu_seconds())
        wall_s = time.perf_counter() - started
    finally:
        await socket.close()
    bare_before = _children_cpu_s()
    for _ in range(runs):
        await bench.bare.sandbox_run(HELLO)
    bare_ms = (_children_cpu_s() - bare_before) / runs * 1000
    api_ms, worker_ms = ((a - b) / runs * 1000 for a, b in zip(after, before, strict=True))
    figures = [
        Figure(
            "server CPU per run, API + worker (ms)",
            f"{api_ms + worker_ms:.1f}",
            f"{bare_ms:.1f} the bare sandbox command's own CPU per run",
            f"<= {TARGET_MS:.0f}",
        ),
        Figure("API / worker CPU per run (ms)", f"{api_ms:.1f} / {worker_ms:.1f}", ""),
        Figure("runs, wall time per run (ms)", f"{runs}, {wall_s / runs * 1000:.1f}", ""),
    ]
    data = {
        "runs": runs,
        "api_cpu_ms_per_run": round(api_ms, 2),
        "worker_cpu_ms_per_run": round(worker_ms, 2),
        "bare_sandbox_cpu_ms_per_run": round(bare_ms, 2),
        "wall_ms_per_run": round(wall_s / runs * 1000, 1),
    }
    return Section("Server CPU per run: print('hi') watched over a subscription, sequential", figures, data)
