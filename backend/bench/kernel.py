"""Kernels: `print('hi')` sent as a cell to a kernel that is up, one cell after another.

Measured from the client, like the latency benchmark's runs: the runInKernel mutation's own time, the mutation's
start to the cell's first output line, and to its terminal status. No sandbox starts for a cell, so the baselines in
the same run are a warm run's submit to first line through Podrun and one bare sandbox run.
"""

from __future__ import annotations

import asyncio
import time

from bench.client import Client, Socket
from bench.context import Bench
from bench.report import Failed, Figure, Section, ms, percentile, spread
from bench.runs import HELLO, RunTiming, timed_follow, timed_run

START = "mutation { startKernel(input: {}) { id } }"
STATUS = "query($id: ID!) { kernel(id: $id) { status error } }"
CELL = "mutation($k: ID!, $code: String!) { runInKernel(kernelId: $k, code: $code) { id } }"
STOP = "mutation($id: ID!) { stopKernel(id: $id) { status } }"


async def _until_idle(client: Client, kernel_id: str) -> None:
    for _ in range(600):
        kernel = (await client.execute(STATUS, {"id": kernel_id}))["kernel"]
        if kernel["status"] == "IDLE":
            return
        if kernel["status"] in ("STOPPED", "DEAD"):
            raise Failed(f"kernel {kernel_id} ended: {kernel['error']}")
        await asyncio.sleep(0.05)
    raise Failed(f"kernel {kernel_id} did not become idle")


async def timed_cell(client: Client, socket: Socket, kernel_id: str) -> RunTiming:
    """Send `print('hi')` as a cell, follow it to its end, and check it printed `hi` and succeeded."""
    started = time.perf_counter()
    cell_id = (await client.execute(CELL, {"k": kernel_id, "code": HELLO}))["runInKernel"]["id"]
    return await timed_follow(socket, cell_id, started)


def _three(values: list[float]) -> str:
    return " / ".join(ms(percentile(values, p)) for p in (0.5, 0.95, 0.99))


async def run(bench: Bench) -> Section:
    """Cells of one kernel, then warm runs and bare sandbox runs as baselines."""
    client = await bench.first_user()
    count = bench.plan.latency_runs
    await bench.settle()
    kernel_id = (await client.execute(START))["startKernel"]["id"]
    socket = await client.socket()
    try:
        await _until_idle(client, kernel_id)
        cells = [await timed_cell(client, socket, kernel_id) for _ in range(count)]
        runs = [await timed_run(client, socket) for _ in range(count)]
    finally:
        await socket.close()
        await client.execute(STOP, {"id": kernel_id})
    bare = [await bench.bare.sandbox_run(HELLO) for _ in range(count)]
    bare_done = percentile([t.done for t in bare], 0.5)
    return Section(
        f"kernel: print('hi') as a cell of a running kernel, {count} cells",
        [
            Figure("runInKernel mutation p50 (ms)", ms(percentile([c.submit for c in cells], 0.5))),
            Figure(
                "runInKernel -> first line, p50 / p95 / p99 (ms)",
                _three([c.first for c in cells]),
                f"a warm run's submit -> first line: {_three([r.first for r in runs])}; bare sandbox run p50 "
                f"{ms(bare_done)}",
                "a few ms (no sandbox starts)",
            ),
            Figure("runInKernel -> terminal, p50 / p95 / p99 (ms)", _three([c.terminal for c in cells])),
        ],
        data={
            "cell_first": spread([c.first for c in cells]),
            "cell_terminal": spread([c.terminal for c in cells]),
            "run_first": spread([r.first for r in runs]),
            "bare_sandbox_done_p50_ms": round(bare_done * 1000, 2),
        },
    )
