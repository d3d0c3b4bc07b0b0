"""Pod start-up on the local Kubernetes 1.20: `print('hi')` through KubernetesRunner, to first output and to the end,
on cold pods and then back to back on warm ones (how many of those found a warm pod waiting); and a kernel's
pod: `print('hi')` cells, from sending one (over the attach stream) to its first output (from the pod log).

Needs the cluster of infra/kubernetes-local (`./taskw kubernetes:up`); without it the benchmark
says so and measures nothing. Runs in the `default` namespace as the cluster's administrator, so it
needs nothing of Podrun's deployment. The baseline is the local sandbox (bench/sandbox.py) on the
same machine in the same run: the ratio is what a pod costs over a bubblewrap sandbox.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path

from bench.report import Failed, Figure, median, percentile
from podrun.core.limits import Limits
from podrun.core.output import Stream
from podrun.kernels.session import kernel_sandbox_name
from podrun.runners.base import NO_ARTIFACTS, OutputBytes, SandboxSpec, sandbox_name
from podrun.runners.kernel import KernelChannel, KernelSandbox
from podrun.runners.kubernetes import KubernetesRunner
from podrun.runners.local import LocalRunner
from podrun.settings import KubernetesSettings, get_settings

RUNS = 10
SCRIPT = "print('hi')"
LIMITS = Limits(wall_time_ms=10_000, cpu_time_ms=5_000, memory_mib=256, output_bytes=1024 * 1024, processes=16)
STATE = Path(os.environ.get("LOCAL_KUBERNETES_STATE", "/var/lib/podrun-kubernetes"))


# A pool as an operator would turn it on: two waiting, up to four while runs come back to back.
WARM = {"warm_pool_size": 2, "warm_pool_max": 4}
WARM_PREFIX = "podrun-warm-"
MS = 1000
# (first output, done, the script's own wall time as the harness measured it), in seconds.
Timing = tuple[float, float, float]


async def _timed(runner: KubernetesRunner | LocalRunner, runtime_id: str, warm: list[bool] | None = None) -> Timing:
    """Seconds from asking for the sandbox to its first output and to wait() returning, and the script's own wall time.

    `warm` gets whether the run found a warm pod waiting.
    """
    spec = SandboxSpec(sandbox_name(uuid.uuid4()), runtime_id, SCRIPT, b"", LIMITS)
    started = time.perf_counter()
    sandbox = await runner.start(spec)
    if warm is not None:
        warm.append(getattr(sandbox, "name", "").startswith(WARM_PREFIX))
    first, output = 0.0, b""
    async for chunk in sandbox.output():
        first = first or time.perf_counter() - started
        if isinstance(chunk, OutputBytes) and chunk.stream is Stream.STDOUT:
            output += chunk.data
    result = await sandbox.wait()
    done = time.perf_counter() - started
    if output != b"hi\n" or result.exit_code != 0 or result.usage.wall_time_ms is None:
        raise Failed(f"print('hi') gave {output!r}, {result}")
    return first, done, result.usage.wall_time_ms / 1000


async def _kernel_cells(runner: KubernetesRunner, runtime_id: str) -> list[float]:
    """Seconds from sending each of RUNS cells to a kernel's pod to the cell's first output."""
    spec = SandboxSpec(kernel_sandbox_name(uuid.uuid4()), runtime_id, "", None, LIMITS, kernel=True)
    started = await runner.start(spec)
    if not isinstance(started, KernelChannel):
        raise Failed(f"the kernel's pod did not start: {await started.wait()}")
    kernel = KernelSandbox(started, LIMITS)
    firsts: list[float] = []
    try:
        for _ in range(RUNS):
            began = time.perf_counter()
            cell = await kernel.cell(SCRIPT, NO_ARTIFACTS)
            first: float | None = None
            async for chunk in cell.output():
                if first is None and isinstance(chunk, OutputBytes):
                    first = time.perf_counter() - began
            if first is None or (await cell.wait()).exit_code != 0:
                raise Failed("a kernel's cell printed nothing or failed")
            firsts.append(first)
    finally:
        await kernel.stop()
    return firsts


async def run() -> list[Figure]:
    """Run the pod start-up benchmark and return its figures; none when there is no local cluster."""
    info = STATE / "cluster.json"
    if not info.exists():
        return [Figure("skipped", "-", "the local Kubernetes is not running (./taskw kubernetes:up)")]
    cluster = json.loads(info.read_text())
    runtime_id = "python-3.11"
    image = cluster["images"][runtime_id]
    kubernetes = KubernetesSettings(
        kubeconfig=cluster["admin_kubeconfig"],
        namespace="default",
        runtimes={runtime_id: image},
        default_runtime=runtime_id,
        image_pull_policy="Never",
    )
    settings = get_settings().model_copy(update={"kubernetes": kubernetes})
    pods = KubernetesRunner(settings)
    warm_settings = settings.model_copy(update={"kubernetes": kubernetes.model_copy(update=WARM)})
    warm_pods = KubernetesRunner(warm_settings)
    local = LocalRunner(get_settings())
    local_runtime = next(runtime for runtime in local.runtimes() if runtime.default)
    in_pods: list[Timing] = []
    in_sandboxes: list[Timing] = []
    in_warm_pods: list[Timing] = []
    warm: list[bool] = []
    try:
        for _ in range(RUNS):  # alternate, so a noisy moment hits both sides alike
            in_pods.append(await _timed(pods, runtime_id))
            in_sandboxes.append(await _timed(local, local_runtime.id))
        await warm_pods.open("bench")
        await _until_warm(warm_pods, runtime_id, WARM["warm_pool_size"])
        for _ in range(RUNS):  # back to back, as a class pressing Run together would
            in_warm_pods.append(await _timed(warm_pods, runtime_id, warm))
        kernel_cells = await _kernel_cells(pods, runtime_id)
    finally:
        await warm_pods.close()
        await pods.cluster.close()
    kernel_cells_ms = [cell * MS for cell in kernel_cells]
    figures = _start_figures(in_pods, in_sandboxes, in_warm_pods, warm)
    figures += [
        Figure("kernel pod: cell sent -> first output, p50 (ms)", f"{median(kernel_cells_ms):.0f}", "runner only"),
        Figure("kernel pod: cell sent -> first output, p95 (ms)", f"{percentile(kernel_cells_ms, 0.95):.0f}", ""),
    ]
    return [*figures, Figure("cluster", f"Kubernetes {cluster['version']}", image)]


async def _until_warm(runner: KubernetesRunner, runtime_id: str, count: int) -> None:
    """Wait (bounded) until the pool holds `count` waiting pods."""
    deadline = time.monotonic() + 120
    while runner.pool.sizes().get(runtime_id, 0) < count:
        if time.monotonic() > deadline:
            raise Failed(f"the warm pool did not fill: {runner.pool.sizes()}")
        await asyncio.sleep(0.2)


def _start_figures(
    pods: list[Timing], sandboxes: list[Timing], warm_pods: list[Timing], warm: list[bool]
) -> list[Figure]:
    """Cold and warm pods to first output and to the end, beside the local sandbox; issue 21's two targets.

    Of 10 runs, p95 is the slowest. The end's target: the exit frame ends the run, so done comes at most
    100 ms after the first output plus the script's own time (the pod is deleted in the background).
    """
    figures = []
    for index, name in enumerate(("first output", "done")):
        for label, fraction in (("p50", 0.5), ("p95", 0.95)):
            pod = percentile([timing[index] * MS for timing in pods], fraction)
            sandbox = percentile([timing[index] * MS for timing in sandboxes], fraction)
            figures.append(Figure(f"cold pods: {name} {label} (ms)", f"{pod:.0f}", f"{sandbox:.0f} local sandbox"))
    for index, name in enumerate(("first output", "done")):
        for label, fraction in (("p50", 0.5), ("p95", 0.95)):
            value = percentile([timing[index] * MS for timing in warm_pods], fraction)
            figures.append(Figure(f"warm pods, back to back: {name} {label} (ms)", f"{value:.0f}", ""))
    hits = [timing for timing, was_warm in zip(warm_pods, warm, strict=True) if was_warm] or warm_pods
    ends = [(done - first) * MS for first, done, _ in hits]
    sandbox_ends = [(done - first) * MS for first, done, _ in sandboxes]
    figures += [
        Figure(
            "warm pods: first output -> done, p50 / p95 of the warm ones (ms)",
            f"{percentile(ends, 0.5):.0f} / {percentile(ends, 0.95):.0f}",
            f"{percentile(sandbox_ends, 0.5):.0f} / {percentile(sandbox_ends, 0.95):.0f} local sandbox; the script's "
            f"own time p50 {percentile([script * MS for _, _, script in hits], 0.5):.0f}",
            "<= script's time + 100",
        ),
        Figure(
            "warm pods: back-to-back runs that found one waiting",
            f"{sum(warm)} of {len(warm)}",
            f"pool of {WARM['warm_pool_size']}, up to {WARM['warm_pool_max']}",
            f"{len(warm)} of {len(warm)}",
        ),
    ]
    return figures
