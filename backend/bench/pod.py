"""Pod start-up on the local Kubernetes 1.20: `print('hi')` through KubernetesRunner, to first output and to the end.

Needs the cluster of infra/kubernetes-local (`./taskw kubernetes:up`); without it the benchmark
says so and measures nothing. Runs in the `default` namespace as the cluster's administrator, so it
needs nothing of Podrun's deployment. The baseline is the local sandbox (bench/sandbox.py) on the
same machine in the same run: the ratio is what a pod costs over a bubblewrap sandbox.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

from bench.report import Failed, Figure, median, percentile
from podrun.core.limits import Limits
from podrun.core.output import Stream
from podrun.runners.base import OutputBytes, SandboxSpec, sandbox_name
from podrun.runners.kubernetes import KubernetesRunner
from podrun.runners.local import LocalRunner
from podrun.settings import KubernetesSettings, get_settings

RUNS = 10
SCRIPT = "print('hi')"
LIMITS = Limits(wall_time_ms=10_000, cpu_time_ms=5_000, memory_mib=256, output_bytes=1024 * 1024, processes=16)
STATE = Path(os.environ.get("LOCAL_KUBERNETES_STATE", "/var/lib/podrun-kubernetes"))


async def _timed(runner: KubernetesRunner | LocalRunner, runtime_id: str) -> tuple[float, float]:
    """Seconds from asking for the sandbox to its first output, and to wait() returning."""
    spec = SandboxSpec(sandbox_name(uuid.uuid4()), runtime_id, SCRIPT, b"", LIMITS)
    started = time.perf_counter()
    sandbox = await runner.start(spec)
    first, output = 0.0, b""
    async for chunk in sandbox.output():
        first = first or time.perf_counter() - started
        if isinstance(chunk, OutputBytes) and chunk.stream is Stream.STDOUT:
            output += chunk.data
    result = await sandbox.wait()
    if output != b"hi\n" or result.exit_code != 0:
        raise Failed(f"print('hi') gave {output!r}, {result}")
    return first, time.perf_counter() - started


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
    local = LocalRunner(get_settings())
    local_runtime = next(runtime for runtime in local.runtimes() if runtime.default)
    in_pods: list[tuple[float, float]] = []
    in_sandboxes: list[tuple[float, float]] = []
    try:
        for _ in range(RUNS):  # alternate, so a noisy moment hits both sides alike
            in_pods.append(await _timed(pods, runtime_id))
            in_sandboxes.append(await _timed(local, local_runtime.id))
    finally:
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
    return [*figures, Figure("cluster", f"Kubernetes {cluster['version']}", image)]
