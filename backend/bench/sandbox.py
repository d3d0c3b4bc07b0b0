"""Sandbox start-up: how long `print('hi')` takes through LocalRunner, to first output and to the end.

The baseline is the same interpreter started as a bare subprocess (`python -c "print('hi')"`), timed
the same way in the same run: interpreter start-up is a cost no sandbox can avoid, so the ratio
between the two is the price of isolation (bwrap, cgroup, harness handshake).
"""

from __future__ import annotations

import asyncio
import time
import uuid

from bench.report import Failed, Figure, median, percentile
from podrun.core.limits import Limits
from podrun.core.output import Stream
from podrun.runners.base import SandboxSpec, sandbox_name
from podrun.runners.local import LocalRunner
from podrun.settings import get_settings

RUNS = 10
SCRIPT = "print('hi')"
LIMITS = Limits(wall_time_ms=10_000, cpu_time_ms=5_000, memory_mib=256, output_bytes=1024 * 1024, processes=16)


async def _sandboxed(runner: LocalRunner, runtime_id: str) -> tuple[float, float]:
    """Seconds from submitting the spec to the first output, and to wait() returning."""
    spec = SandboxSpec(name=sandbox_name(uuid.uuid4()), runtime_id=runtime_id, script=SCRIPT, stdin=None, limits=LIMITS)
    started = time.perf_counter()
    sandbox = await runner.start(spec)
    await sandbox.close_stdin()
    first, output = 0.0, b""
    async for chunk in sandbox.output():
        first = first or time.perf_counter() - started
        output += chunk.data if chunk.stream is Stream.STDOUT else b""
    result = await sandbox.wait()
    done = time.perf_counter() - started
    if output != b"hi\n" or result.exit_code != 0:
        raise Failed(f"sandboxed print('hi') gave {output!r}, {result}")
    return first, done


async def _bare(executable: str) -> tuple[float, float]:
    """The same, for the interpreter run directly as a subprocess."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(executable, "-c", SCRIPT, stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    output = await process.stdout.read(1)
    first = time.perf_counter() - started
    output += await process.stdout.read()
    await process.wait()
    done = time.perf_counter() - started
    if output != b"hi\n" or process.returncode != 0:
        raise Failed(f"bare print('hi') gave {output!r}, exit {process.returncode}")
    return first, done


def _row(name: str, sandboxed: list[float], bare: list[float]) -> list[Figure]:
    ms = 1000
    return [
        Figure(f"{name} median (ms)", f"{median(sandboxed) * ms:.1f}", f"{median(bare) * ms:.1f} bare subprocess"),
        Figure(f"{name} p90 (ms)", f"{percentile(sandboxed, 0.9) * ms:.1f}", f"{percentile(bare, 0.9) * ms:.1f}"),
        Figure(f"{name} overhead (median ratio)", f"{median(sandboxed) / median(bare):.1f}x"),
    ]


async def run() -> list[Figure]:
    """Run the start-up benchmark and return its figures; raise Failed if a run misbehaves."""
    runner = LocalRunner(get_settings())
    runtime = next(runtime for runtime in runner.runtimes() if runtime.default)
    executable = str(runner.interpreters[runtime.id].executable)
    runner.cgroups.describe()  # detection happens once; keep it out of the first timed run
    sandboxed: list[tuple[float, float]] = []
    bare: list[tuple[float, float]] = []
    for _ in range(RUNS):  # alternate, so a noisy moment hits both sides alike
        sandboxed.append(await _sandboxed(runner, runtime.id))
        bare.append(await _bare(executable))
    return [
        *_row("first output", [first for first, _ in sandboxed], [first for first, _ in bare]),
        *_row("done", [done for _, done in sandboxed], [done for _, done in bare]),
        Figure("runtime", runtime.id, runner.isolation()),
    ]
