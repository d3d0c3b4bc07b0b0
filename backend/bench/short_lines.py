"""Short lines: a million empty lines, beside the same bytes in long lines.

Each script writes its bytes at once (`sys.stdout.write`), within the default output cap; one watcher
counts every line and checks the seqs. Measured per script: submit to the last line delivered and to
the terminal status, the run's own time (started -> finished), the API's and the worker's CPU seconds
and the worker's resident memory growth. The long-lines run is the baseline: a line should cost its
bytes, not a Redis entry, a Python object and an archive record of its own. The empty lines' rate (lines
delivered to the watcher per second, from submit to the last one) stands beside the bare sandbox command
writing the same lines to a pipe.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

from bench.context import Bench
from bench.report import Failed, Figure, Section, ms
from bench.system import Process

LONG_LINE = 1000  # bytes a long line has, its newline included
SAMPLE_S = 0.01
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Result:
    last_line_s: float
    terminal_s: float
    run_s: float
    lines: int
    api_cpu_s: float
    worker_cpu_s: float
    worker_growth_mib: float


def _script(lines: int, line_bytes: int) -> str:
    return f"import sys\nsys.stdout.write(({'x' * (line_bytes - 1)!r} + '\\n') * {lines})\n"


async def _sample_peak(process: Process, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], process.rss_bytes())
        await asyncio.sleep(SAMPLE_S)


async def _measure(bench: Bench, lines: int, line_bytes: int) -> _Result:
    client = await bench.first_user()
    socket = await client.socket()
    api, worker = bench.podrun.api, bench.podrun.worker
    rss_before = worker.rss_bytes()
    cpu_before = [api.cpu_seconds(), worker.cpu_seconds()]
    peak = [rss_before]
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_peak(worker, peak, stop))
    started = time.perf_counter()
    execution_id = await client.submit(_script(lines, line_bytes), limits={"wallTimeMs": 60_000})
    next_seq, received, last_line = 1, 0, 0.0
    try:
        async for event in socket.events(execution_id):
            seqs = [line["seq"] for line in event["lines"]] if "lines" in event else [event["seq"]]
            if seqs != list(range(next_seq, next_seq + len(seqs))):
                raise Failed(f"short lines: expected seq {next_seq}, got {seqs[:3]}")
            next_seq += len(seqs)
            if "lines" in event:
                received += len(seqs)
                last_line = time.perf_counter()
        terminal = time.perf_counter()
    finally:
        stop.set()
        await sampler
        await socket.close()
    cpu = [api.cpu_seconds() - cpu_before[0], worker.cpu_seconds() - cpu_before[1]]
    execution = await client.execution(execution_id)
    if execution["status"] != "SUCCEEDED" or received != lines:
        raise Failed(f"short lines: {lines} lines of {line_bytes} bytes ended {execution}, {received} received")
    run_s = (
        datetime.fromisoformat(execution["finishedAt"]) - datetime.fromisoformat(execution["startedAt"])
    ).total_seconds()
    return _Result(
        last_line_s=last_line - started,
        terminal_s=terminal - started,
        run_s=run_s,
        lines=received,
        api_cpu_s=cpu[0],
        worker_cpu_s=cpu[1],
        worker_growth_mib=(peak[0] - rss_before) / MIB,
    )


async def run(bench: Bench) -> Section:
    """The empty lines through Podrun, then the same bytes as long lines."""
    count = bench.plan.short_lines
    short = await _measure(bench, count, 1)
    long = await _measure(bench, count // LONG_LINE, LONG_LINE)
    bare = await bench.bare.sandbox_run(_script(count, 1), expected=None)
    rate = count / short.last_line_s
    label = f"{count // LONG_LINE:,} lines of {LONG_LINE:,} bytes"
    figures = [
        Figure(
            "empty lines/s, one sandbox to one watcher",
            f"{rate:,.0f}",
            f"{count / bare.done:,.0f} bare sandbox command writing them to a pipe",
            ">= 500,000",
        ),
        Figure(
            f"{count:,} empty lines: submit -> last line delivered (ms)",
            ms(short.last_line_s),
            f"{ms(long.last_line_s)} {label}",
        ),
        Figure("submit -> terminal status (ms)", ms(short.terminal_s), f"{ms(long.terminal_s)} {label}"),
        Figure("the run, started -> finished (ms)", ms(short.run_s), f"{ms(long.run_s)} {label}"),
        Figure(
            "CPU seconds, API / worker",
            f"{short.api_cpu_s:.2f} / {short.worker_cpu_s:.2f}",
            f"{long.api_cpu_s:.2f} / {long.worker_cpu_s:.2f} {label}",
        ),
        Figure(
            "worker RSS growth (MiB)",
            f"+{short.worker_growth_mib:.1f}",
            f"+{long.worker_growth_mib:.1f} {label}",
            "bounded by the cap",
        ),
    ]
    data = {
        "lines": count,
        "empty_lines_per_s": round(rate),
        "bare_sandbox_lines_per_s": round(count / bare.done),
        "empty_lines": _raw(short),
        "long_lines": {"line_bytes": LONG_LINE, **_raw(long)},
    }
    return Section(f"Short lines: {count:,} empty lines beside the same bytes in long lines", figures, data)


def _raw(result: _Result) -> dict[str, float | int]:
    """The raw figures of one run, rounded for the JSON report."""
    return {
        "last_line_ms": round(result.last_line_s * 1000, 1),
        "terminal_ms": round(result.terminal_s * 1000, 1),
        "run_ms": round(result.run_s * 1000, 1),
        "lines": result.lines,
        "api_cpu_s": round(result.api_cpu_s, 2),
        "worker_cpu_s": round(result.worker_cpu_s, 2),
        "worker_rss_growth_mib": round(result.worker_growth_mib, 1),
    }
