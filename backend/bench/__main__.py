"""Run every benchmark and print its figures; exit 1 if one saw something functionally wrong."""

from __future__ import annotations

import asyncio
import logging
import sys
import time

import structlog

from bench import catchup, fanout, imports, lines, pod, refusals, sandbox
from bench.report import Failed, print_table


async def main() -> int:
    """Run the benchmarks one after another (they would disturb each other's timings)."""
    failed = False
    benchmarks = [
        ("fan-out: 1 writer, 200 subscribers, 20,001 events", fanout.run),
        ("sandbox: print('hi'), 10 runs", sandbox.run),
        ("scientific runtime: first imports in cold sandboxes, 5 runs", imports.run),
        ("lines: LineAssembler on 50 MB of mixed output", lines.run),
        ("catch-up: a late watcher of a finished run with 100,000 lines", catchup.run),
        ("pod: print('hi') in a pod of the local Kubernetes 1.20, 10 runs", pod.run),
        ("refusals: server CPU per hostile query, 20 each", refusals.run),
    ]
    for title, benchmark in benchmarks:
        started = time.perf_counter()
        try:
            figures = await benchmark()
        except Failed as exc:
            print(f"\n{title}\n  FAILED: {exc}")
            failed = True
            continue
        print_table(f"{title}  ({time.perf_counter() - started:.1f} s)", figures)
    return 1 if failed else 0


if __name__ == "__main__":
    # Podrun's info logs (interpreter discovery, isolation) would break up the tables.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    sys.exit(asyncio.run(main()))
