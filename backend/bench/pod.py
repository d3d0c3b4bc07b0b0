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


async def _timed(
    runner: KubernetesRunner | LocalRunner, runtime_id: str, warm: list[bool] | None = None
) -> tuple[float, float]:
    """Seconds from asking for the sandbox to its first output, and to wait() returning (whether it was warm)."""
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
    if output != b"hi\n" or result.exit_code != 0:
        raise Failed(f"print('hi') gave {output!r}, {result}")
    return first, time.perf_counter() - started


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
    in_pods: list[tuple[float, float]] = []
    in_sandboxes: list[tuple[float, float]] = []
    in_warm_pods: list[tuple[float, float]] = []
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
    ms = 1000
    figures = []
    for index, name in enumerate(("first output", "done")):
        pod = [times[index] for times in in_pods]
        sandbox = [times[index] for times in in_sandboxes]
        figures += [
            Figure(f"{name} median (ms)", f"{median(pod) * ms:.0f}", f"{median(sandbox) * ms:.0f} local sandbox"),
            Figure(f"{name} p90 (ms)", f"{percentile(pod, 0.9) * ms:.0f}", f"{percentile(sandbox, 0.9) * ms:.0f}"),
        ]
    for index, name in enumerate(("first output", "done")):
        times = [run[index] for run in in_warm_pods]
        figures.append(Figure(f"warm pods, back to back: {name} median (ms)", f"{median(times) * ms:.0f}", ""))
    ends = [done - first for first, done in in_warm_pods]
    figures += [
        Figure("warm pods: first output -> done, median (ms)", f"{median(ends) * ms:.0f}", "target <= script + 100"),
        Figure("warm pods: runs that found one waiting", f"{sum(warm)} of {len(warm)}", ""),
        Figure("kernel pod: cell sent -> first output, median (ms)", f"{median(kernel_cells) * ms:.0f}", "runner only"),
        Figure("kernel pod: cell sent -> first output, p90 (ms)", f"{percentile(kernel_cells, 0.9) * ms:.0f}", ""),
    ]
    return [*figures, Figure("cluster", f"Kubernetes {cluster['version']}", image)]


async def _until_warm(runner: KubernetesRunner, runtime_id: str, count: int) -> None:
    """Wait (bounded) until the pool holds `count` waiting pods."""
    deadline = time.monotonic() + 120
    while runner.pool.sizes().get(runtime_id, 0) < count:
        if time.monotonic() > deadline:
            raise Failed(f"the warm pool did not fill: {runner.pool.sizes()}")
        await asyncio.sleep(0.2)
