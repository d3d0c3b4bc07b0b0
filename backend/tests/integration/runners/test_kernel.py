"""A kernel's sandbox on the local runner: cells share state, interrupts keep it, limits end a cell, not the kernel."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator

import pytest

from podrun.core.limits import LimitKind, Limits
from podrun.core.output import Stream
from podrun.runners.base import ArtifactCaps, ArtifactOutput, OutputBytes, SandboxResult, SandboxSpec, sandbox_name
from podrun.runners.kernel import KernelSandbox
from podrun.runners.local import LocalRunner, LocalSandbox
from podrun.settings import SandboxSettings, Settings

LIMITS = Limits(wall_time_ms=3_000, cpu_time_ms=1_500, memory_mib=256, output_bytes=1024 * 1024, processes=16)
CAPS = ArtifactCaps(count=4, total_bytes=1024 * 1024)


@pytest.fixture(scope="module", params=[0, 1], ids=["cold", "warm"])
async def runner(request: pytest.FixtureRequest) -> AsyncIterator[LocalRunner]:
    runner = LocalRunner(Settings(jwt_secret="test-secret", sandbox=SandboxSettings(warm_pool_size=request.param)))
    await runner.open("test-worker")
    yield runner
    await runner.close()


@pytest.fixture
async def kernel(runner: LocalRunner) -> AsyncIterator[KernelSandbox]:
    kernel = await start_kernel(runner)
    yield kernel
    await kernel.stop()


async def start_kernel(runner: LocalRunner, runtime_id: str | None = None, limits: Limits = LIMITS) -> KernelSandbox:
    runtime_id = runtime_id or next(runtime.id for runtime in runner.runtimes() if runtime.default)
    spec = SandboxSpec(
        name=sandbox_name(uuid.uuid4()), runtime_id=runtime_id, script="", stdin=None, limits=limits, kernel=True
    )
    sandbox = await runner.start(spec)
    assert isinstance(sandbox, LocalSandbox)
    return KernelSandbox(sandbox, limits)


async def run_cell(
    kernel: KernelSandbox, code: str, *, interrupt_after: bytes | None = None
) -> tuple[str, str, SandboxResult, list[ArtifactOutput]]:
    cell = await kernel.cell(code, CAPS)
    out: dict[Stream, bytes] = {Stream.STDOUT: b"", Stream.STDERR: b""}
    artifacts: list[ArtifactOutput] = []
    async for item in cell.output():
        if isinstance(item, OutputBytes):
            out[item.stream] += item.data
            if interrupt_after is not None and interrupt_after in out[Stream.STDOUT]:
                await cell.kill()
        else:
            artifacts.append(item)
    return out[Stream.STDOUT].decode(), out[Stream.STDERR].decode(), await cell.wait(), artifacts


async def test_cells_share_state_and_show_their_last_value(kernel: KernelSandbox) -> None:
    assert (await run_cell(kernel, "x = 41"))[:2] == ("", "")
    stdout, stderr, result, _ = await run_cell(kernel, "print(x + 1)\nx * 2")
    assert (stdout, stderr, result.exit_code, result.limit_exceeded) == ("42\n82\n", "", 0, None)
    stdout, _, _, _ = await run_cell(kernel, "import os\nopen('/tmp/kept', 'w').write('yes')\nNone")
    assert stdout == ""
    assert (await run_cell(kernel, "open('/tmp/kept').read()"))[0] == "'yes'\n"


async def test_an_exception_ends_the_cell_with_its_own_frames_and_keeps_the_kernel(kernel: KernelSandbox) -> None:
    await run_cell(kernel, "y = 1")
    _, stderr, result, _ = await run_cell(kernel, "def f():\n    return 1 / 0\nf()")
    assert result.exit_code == 1
    assert stderr.splitlines()[0] == "Traceback (most recent call last):"
    assert '  File "<cell 2>", line 3, in <module>' in stderr
    assert "harness" not in stderr
    assert stderr.rstrip().endswith("ZeroDivisionError: division by zero")
    assert (await run_cell(kernel, "y"))[0] == "1\n"
    _, stderr, result, _ = await run_cell(kernel, "def (")
    assert result.exit_code == 1
    assert "SyntaxError" in stderr


async def test_an_interrupt_stops_the_cell_and_keeps_the_state(kernel: KernelSandbox) -> None:
    await run_cell(kernel, "x = 41")
    _, stderr, result, _ = await run_cell(kernel, "print('go', flush=True)\nwhile True: pass", interrupt_after=b"go")
    assert (result.exit_code, result.signal, result.limit_exceeded) == (None, signal.SIGINT, None), (result, stderr)
    assert stderr.rstrip().endswith("KeyboardInterrupt")
    assert (await run_cell(kernel, "print(x)"))[0] == "41\n"
    assert kernel.alive


@pytest.mark.parametrize(
    ("wall_ms", "cpu_ms", "code", "limit"),
    [
        (1000, 5000, "import time\ntime.sleep(30)", LimitKind.WALL_TIME),
        (30_000, 500, "while True: pass", LimitKind.CPU_TIME),
    ],
    ids=["wall", "cpu"],
)
async def test_wall_and_cpu_time_are_per_cell(
    runner: LocalRunner, wall_ms: int, cpu_ms: int, code: str, limit: LimitKind
) -> None:
    kernel = await start_kernel(
        runner, limits=LIMITS.model_copy(update={"wall_time_ms": wall_ms, "cpu_time_ms": cpu_ms})
    )
    try:
        for _ in range(2):  # the limit holds for each cell, not for the kernel
            _, _, result, _ = await run_cell(kernel, code)
            assert (result.signal, result.limit_exceeded) == (signal.SIGINT, limit)
        assert (await run_cell(kernel, "print('still here')"))[0] == "still here\n"
    finally:
        await kernel.stop()


async def test_a_cell_that_ignores_its_interrupt_is_killed_with_the_kernel(kernel: KernelSandbox) -> None:
    code = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nprint('go', flush=True)\ntime.sleep(30)"
    _, _, result, _ = await run_cell(kernel, code, interrupt_after=b"go")
    assert result.signal == signal.SIGKILL
    assert not kernel.alive


async def test_figures_arrive_under_their_cell(runner: LocalRunner) -> None:
    scientific = [r.id for r in runner.runtimes() if r.packages]
    if not scientific:
        pytest.fail("no scientific runtime installed (./taskw setup installs one)")
    kernel = await start_kernel(runner, scientific[0])
    try:
        code = "import matplotlib.pyplot as plt\nprint('before')\nplt.plot([1, 2, 3])\nplt.show()\nprint('after')"
        stdout, _, result, artifacts = await run_cell(kernel, code)
        assert (stdout, result.exit_code) == ("before\nafter\n", 0)
        assert [a.name for a in artifacts] == ["figure-1.png"]
        _, _, _, artifacts = await run_cell(kernel, "plt.plot([3, 2, 1]);")
        assert [a.name for a in artifacts] == ["figure-2.png"]  # left open: sent when the cell ends
    finally:
        await kernel.stop()


async def test_cpu_used_between_cells_is_limited(kernel: KernelSandbox) -> None:
    code = "import threading\ndef spin():\n    while True:\n        pass\n"
    code += "threading.Thread(target=spin, daemon=True).start()"
    assert (await run_cell(kernel, code))[2].exit_code == 0
    await asyncio.wait_for(kernel.closed.wait(), 10)
    assert kernel.idle_end() is LimitKind.CPU_TIME
    assert not kernel.alive
