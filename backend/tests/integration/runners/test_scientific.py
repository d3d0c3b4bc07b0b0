"""The scientific runtime in real sandboxes: its packages import and compute offline, and figures come back."""

from __future__ import annotations

import struct
import textwrap
import uuid
from collections.abc import AsyncIterator

import pytest

from podrun.core.limits import Limits
from podrun.core.output import Stream
from podrun.runners import scientific
from podrun.runners.base import (
    ArtifactCaps,
    ArtifactOutput,
    OutputBytes,
    SandboxOutput,
    SandboxResult,
    SandboxSpec,
    sandbox_name,
)
from podrun.runners.local import LocalRunner, LocalSandbox
from podrun.settings import SandboxSettings, Settings

LIMITS = Limits(wall_time_ms=60_000, cpu_time_ms=30_000, memory_mib=512, output_bytes=8 * 1024 * 1024, processes=16)
CAPS = ArtifactCaps(count=32, total_bytes=4 * 1024 * 1024)
PACKAGES = {"numpy", "pandas", "matplotlib", "scipy"}


@pytest.fixture(scope="module")
async def runner() -> AsyncIterator[LocalRunner]:
    runner = LocalRunner(Settings(jwt_secret="test-secret", sandbox=SandboxSettings(warm_pool_size=0)))
    yield runner
    await runner.close()


@pytest.fixture(scope="module")
def runtime_id(runner: LocalRunner) -> str:
    """The newest scientific runtime, which the setup (`podrun stage-runtimes`) installs."""
    default = next(runtime for runtime in runner.runtimes() if runtime.default)
    runtime = f"{default.id}{scientific.RUNTIME_SUFFIX}"
    assert runtime in runner.interpreters, "run the setup: ./taskw setup installs the scientific runtime"
    return runtime


async def run(runner: LocalRunner, runtime_id: str, script: str) -> tuple[list[SandboxOutput], SandboxResult]:
    spec = SandboxSpec(
        name=sandbox_name(uuid.uuid4()),
        runtime_id=runtime_id,
        script=textwrap.dedent(script),
        stdin=b"",
        limits=LIMITS,
        artifact_caps=CAPS,
    )
    sandbox = await runner.start(spec)
    assert isinstance(sandbox, LocalSandbox), await sandbox.wait()
    await sandbox.close_stdin()
    outputs = [output async for output in sandbox.output()]
    return outputs, await sandbox.wait()


def text(outputs: list[SandboxOutput], stream: Stream = Stream.STDOUT) -> str:
    return b"".join(o.data for o in outputs if isinstance(o, OutputBytes) and o.stream is stream).decode()


def in_order(outputs: list[SandboxOutput]) -> list[str]:
    """Artifacts by name, and the stdout between them joined."""
    sequence: list[str] = []
    text_before = False
    for output in outputs:
        if isinstance(output, ArtifactOutput):
            sequence.append(output.name)
            text_before = False
        elif output.stream is Stream.STDOUT:
            if text_before:
                sequence[-1] += output.data.decode()
            else:
                sequence.append(output.data.decode())
            text_before = True
    return sequence


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (asserting the signature and the chunk's place)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind, width, height = struct.unpack(">I4sII", data[8:24])
    assert (length, kind) == (13, b"IHDR")
    return width, height


def test_every_interpreter_has_a_scientific_runtime_listing_its_packages(runner: LocalRunner) -> None:
    runtimes = {runtime.id: runtime for runtime in runner.runtimes()}
    plain = [runtime for runtime in runtimes.values() if not runtime.id.endswith(scientific.RUNTIME_SUFFIX)]
    for runtime in plain:
        assert runtime.packages == ()
        with_packages = runtimes[runtime.id + scientific.RUNTIME_SUFFIX]
        assert (with_packages.version, with_packages.default) == (runtime.version, False)
        names = {name.lower() for name, _ in with_packages.packages}
        assert names >= PACKAGES
        assert all(version and version[0].isdigit() for _, version in with_packages.packages)
    assert sum(runtime.default for runtime in runtimes.values()) == 1


async def test_numpy_pandas_scipy_and_matplotlib_compute_without_network(runner: LocalRunner, runtime_id: str) -> None:
    outputs, result = await run(
        runner,
        runtime_id,
        """
        import socket
        import numpy as np, pandas as pd, scipy.optimize, matplotlib
        frame = pd.DataFrame({"x": np.arange(5), "y": np.arange(5) ** 2})
        print(frame["y"].sum(), round(float(scipy.optimize.brentq(lambda x: x * x - 2, 0, 2)), 6))
        print(matplotlib.get_backend().lower())
        try:
            socket.create_connection(("pypi.org", 443), timeout=2)
            print("network")
        except OSError:
            print("no network")
        try:
            import pip
            print("pip")
        except ImportError:
            print("no pip")
        """,
    )
    assert (result.exit_code, result.error) == (0, None), text(outputs, Stream.STDERR)
    assert text(outputs).splitlines() == ["30 1.414214", "agg", "no network", "no pip"]


async def test_a_plot_comes_back_where_it_was_shown_and_open_figures_at_exit(
    runner: LocalRunner, runtime_id: str
) -> None:
    outputs, result = await run(
        runner,
        runtime_id,
        """
        import matplotlib.pyplot as plt
        print("before")
        plt.plot([1, 2, 3], [1, 4, 9])
        plt.show()
        print("after")
        figure = plt.figure(figsize=(2, 1), dpi=100)
        plt.bar(["a", "b"], [1, 2])
        """,
    )
    assert (result.exit_code, result.error) == (0, None), text(outputs, Stream.STDERR)
    assert in_order(outputs) == ["before\n", "figure-1.png", "after\n", "figure-2.png"]
    shown, at_exit = (o for o in outputs if isinstance(o, ArtifactOutput))
    assert png_size(shown.data) == (640, 480)
    assert png_size(at_exit.data) == (200, 100)
    assert text(outputs, Stream.STDERR) == ""
