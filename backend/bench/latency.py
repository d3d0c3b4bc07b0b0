"""1. Latency: `print('hi')` submitted over HTTP and followed over WebSocket, one run after another.

Measured from the client: the submit mutation's own time, submit to the first output line, and submit
to the terminal status — with the warm pool (the default) and cold (`PODRUN_SANDBOX__WARM_POOL_SIZE=0`,
a fresh worker). Baselines in the same run: the bare interpreter and the bare sandbox command, each
timed to its first output byte and to its exit.
"""

from __future__ import annotations

from bench.client import Client
from bench.context import Bench
from bench.report import Figure, Section, ms, percentile, spread
from bench.runs import HELLO, RunTiming, timed_run
from bench.sandbox import Timing

COLD = {"PODRUN_SANDBOX__WARM_POOL_SIZE": "0"}


async def _series(bench: Bench, client: Client) -> list[RunTiming]:
    await bench.settle()
    socket = await client.socket()
    try:
        return [await timed_run(client, socket) for _ in range(bench.plan.latency_runs)]
    finally:
        await socket.close()


def _three(values: list[float]) -> str:
    return " / ".join(ms(percentile(values, p)) for p in (0.5, 0.95, 0.99))


async def run(bench: Bench) -> Section:
    """Warm and cold series through Podrun, then the bare baselines."""
    client = await bench.first_user()
    warm = await _series(bench, client)
    await bench.podrun.restart_worker(COLD)
    try:
        cold = await _series(bench, client)
    finally:
        await bench.podrun.restart_worker({})
        await bench.settle()
    runs = bench.plan.latency_runs
    interpreter: list[Timing] = [await bench.bare.interpreter_run(HELLO) for _ in range(runs)]
    sandbox: list[Timing] = [await bench.bare.sandbox_run(HELLO) for _ in range(runs)]

    sandbox_first = [t.first for t in sandbox]
    sandbox_done = [t.done for t in sandbox]
    interpreter_first = [t.first for t in interpreter]
    interpreter_done = [t.done for t in interpreter]
    bare_first = f"sandbox {_three(sandbox_first)}; interpreter {_three(interpreter_first)}"
    bare_done = f"sandbox {_three(sandbox_done)}; interpreter {_three(interpreter_done)}"
    warm_first_p50 = percentile([r.first for r in warm], 0.5)
    warm_first_p99 = percentile([r.first for r in warm], 0.99)
    bare_run = percentile(sandbox_done, 0.5)
    figures = [
        Figure("submit mutation p50 (ms), warm series", ms(percentile([r.submit for r in warm], 0.5)), "", "<= 5"),
        Figure(
            "submit -> first line, warm pool, p50 / p95 / p99 (ms)",
            _three([r.first for r in warm]),
            f"first output byte: {bare_first}",
        ),
        Figure(
            "first line p50 / p99, warm, / one bare sandbox run p50",
            f"{warm_first_p50 / bare_run:.2f} / {warm_first_p99 / bare_run:.2f}",
            f"bare sandbox run p50 {ms(bare_run)} ms",
            "<= 1.0 / <= 2.0",
        ),
        Figure(
            "submit -> terminal, warm pool, p50 / p95 / p99 (ms)",
            _three([r.terminal for r in warm]),
            f"exit: {bare_done}",
        ),
        Figure(
            "submit -> first line, cold pool, p50 / p95 / p99 (ms)",
            _three([r.first for r in cold]),
            f"first output byte: {bare_first}",
        ),
        Figure(
            "submit -> terminal, cold pool, p50 / p95 / p99 (ms)",
            _three([r.terminal for r in cold]),
            f"exit: {bare_done}",
        ),
        Figure("runs per series", str(runs), f"after {bench.plan.warmup_runs} unmeasured"),
    ]
    data = {
        "runs": runs,
        "warm": {
            "submit": spread([r.submit for r in warm]),
            "first_line": spread([r.first for r in warm]),
            "terminal": spread([r.terminal for r in warm]),
        },
        "cold": {
            "submit": spread([r.submit for r in cold]),
            "first_line": spread([r.first for r in cold]),
            "terminal": spread([r.terminal for r in cold]),
        },
        "bare_sandbox": {"first_output": spread(sandbox_first), "exit": spread(sandbox_done)},
        "bare_interpreter": {"first_output": spread(interpreter_first), "exit": spread(interpreter_done)},
    }
    return Section("1. Latency: print('hi'), sequential runs", figures, data)
