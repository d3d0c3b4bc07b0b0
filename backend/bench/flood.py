"""4. Flood to the output cap: a script prints timestamped lines as fast as it can until Podrun cuts it off.

One watcher follows it. Measured: the delay from the printing of the last line that was delivered to
its delivery, submit to the terminal status, the API's and the worker's CPU seconds and their peak
resident memory (sampled while the flood runs) against the cap. Baseline: the bare sandbox command
writing the same number of bytes of the same lines to a pipe.
"""

from __future__ import annotations

import asyncio
import time

from bench.context import Bench
from bench.report import Failed, Figure, Section, ms
from bench.system import Process

PAD = "x" * 80
SAMPLE_S = 0.01
MIB = 1024 * 1024

FLOOD = f"import time\npad = {PAD!r}\nwhile True:\n    print(time.time(), pad)\n"


def _bounded(output_bytes: int) -> str:
    """The flood, stopping by itself after about `output_bytes` (what the bare sandbox runs)."""
    lines = output_bytes // (len(f"{time.time()} {PAD}\n"))
    return f"import time\npad = {PAD!r}\nfor _ in range({lines}):\n    print(time.time(), pad)\n"


async def _sample_peaks(processes: list[Process], peaks: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for index, process in enumerate(processes):
            peaks[index] = max(peaks[index], process.rss_bytes())
        await asyncio.sleep(SAMPLE_S)


async def run(bench: Bench) -> Section:
    """One flood through Podrun, then the same bytes through the bare sandbox command."""
    cap = bench.plan.flood_output_bytes
    client = await bench.first_user()
    socket = await client.socket()
    api, worker = bench.podrun.api, bench.podrun.worker
    before = [api.rss_bytes(), worker.rss_bytes()]
    cpu_before = [api.cpu_seconds(), worker.cpu_seconds()]
    peaks = list(before)
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_peaks([api, worker], peaks, stop))
    started = time.perf_counter()
    execution_id = await client.submit(FLOOD, limits={"outputBytes": cap, "wallTimeMs": 60_000})
    last_full: tuple[float, float] | None = None  # (printed at, received at) of the last whole line
    next_seq, lines = 1, 0
    try:
        async for event in socket.events(execution_id):
            now = time.time()
            seqs = [line["seq"] for line in event["lines"]] if "lines" in event else [event["seq"]]
            if seqs != list(range(next_seq, next_seq + len(seqs))):
                raise Failed(f"flood: expected seq {next_seq}, got {seqs[:3]}")
            next_seq += len(seqs)
            for line in event.get("lines", ()):
                lines += 1
                printed, _, pad = line["text"].partition(" ")
                if pad == PAD:
                    last_full = (float(printed), now)
        terminal = time.perf_counter() - started
    finally:
        stop.set()
        await sampler
        await socket.close()
    cpu = [api.cpu_seconds() - cpu_before[0], worker.cpu_seconds() - cpu_before[1]]
    execution = await client.execution(execution_id)
    if execution["limitExceeded"] != "OUTPUT" or last_full is None:
        raise Failed(f"flood ended {execution}, last whole line {last_full}")
    last_line_delay = last_full[1] - last_full[0]
    bare = await bench.bare.sandbox_run(_bounded(cap), expected=None)
    growth = [(peak - start) / MIB for peak, start in zip(peaks, before, strict=True)]
    figures = [
        Figure(f"last line printed -> delivered (ms), cap {cap // 1024:,} KiB", ms(last_line_delay), "", "<= 250"),
        Figure(
            "submit -> terminal status (ms)",
            ms(terminal),
            f"{ms(bare.done)} bare sandbox writing {cap // 1024:,} KiB to a pipe",
        ),
        Figure("lines delivered", f"{lines:,}", ""),
        Figure("CPU seconds, API / worker", f"{cpu[0]:.2f} / {cpu[1]:.2f}", ""),
        Figure(
            "peak RSS, API / worker (MiB); growth during the flood",
            f"{peaks[0] / MIB:.0f} / {peaks[1] / MIB:.0f}; +{growth[0]:.1f} / +{growth[1]:.1f}",
            f"output cap {cap / MIB:.2f} MiB",
            "bounded by the cap",
        ),
    ]
    data = {
        "output_cap_bytes": cap,
        "last_line_delay_ms": round(last_line_delay * 1000, 1),
        "terminal_ms": round(terminal * 1000, 1),
        "bare_sandbox_ms": round(bare.done * 1000, 1),
        "lines": lines,
        "api_cpu_s": round(cpu[0], 2),
        "worker_cpu_s": round(cpu[1], 2),
        "api_peak_rss_mib": round(peaks[0] / MIB, 1),
        "worker_peak_rss_mib": round(peaks[1] / MIB, 1),
        "api_rss_growth_mib": round(growth[0], 1),
        "worker_rss_growth_mib": round(growth[1], 1),
    }
    return Section("4. Flood to the output cap", figures, data)
