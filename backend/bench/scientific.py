"""`import numpy` in a sandbox, where a runtime with the scientific stack exists (none yet: then skipped)."""

from __future__ import annotations

from bench.client import RUNTIMES
from bench.context import Bench
from bench.report import Figure, Section, ms, percentile
from bench.runs import HELLO, timed_run

RUNS = 20
NUMPY = "import numpy\nprint('hi')"


async def run(bench: Bench) -> Section | None:
    """submit -> terminal of `import numpy` vs `print('hi')` in the scientific runtime; None without one."""
    client = await bench.first_user()
    runtimes = (await client.execute(RUNTIMES))["runtimes"]
    scientific = [runtime["id"] for runtime in runtimes if "sci" in runtime["id"] or "numpy" in runtime["id"]]
    if not scientific:
        return None
    runtime = scientific[0]
    socket = await client.socket()
    try:
        hello = [await timed_run(client, socket, HELLO, runtime=runtime) for _ in range(RUNS)]
        numpy = [await timed_run(client, socket, NUMPY, runtime=runtime) for _ in range(RUNS)]
    finally:
        await socket.close()
    p50 = percentile([r.terminal for r in numpy], 0.5)
    hello_p50 = percentile([r.terminal for r in hello], 0.5)
    figures = [Figure(f"submit -> terminal p50, {runtime} (ms)", ms(p50), f"{ms(hello_p50)} print('hi') alone")]
    return Section("import numpy", figures, {"runtime": runtime, "numpy_ms": p50 * 1000, "hello_ms": hello_p50 * 1000})
