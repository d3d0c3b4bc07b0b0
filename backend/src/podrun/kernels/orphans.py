"""Kernels nobody holds any more: their worker died (handed over, or over), or their job was lost (queued again).

On a durable runner (Kubernetes) a kernel's sandbox outlives its worker: a `run_kernel` job with the dead
worker's id hands it to a live worker, which re-attaches to it with its state (kernels/session.py). On the
local runner the sandbox died with its worker, and so did the state: its row ends DEAD, its waiting cells
are cancelled, its runs-in-progress slot is freed. Either way a cell its worker was running ends as a
kernel's cell of a dead worker does (executions/orphans.py: ERROR).
"""

from __future__ import annotations

import structlog

from podrun.core.statuses import KernelStatus
from podrun.executions.heartbeats import Heartbeats
from podrun.executions.lifecycle import RunLifecycle
from podrun.executions.orphans import REQUEUE_AFTER
from podrun.executions.repository import now
from podrun.fair_queue import QueuedRun
from podrun.kernels.lifecycle import KernelLifecycle
from podrun.kernels.session import cancel_waiting_cells, kernel_sandbox_name
from podrun.observability import metrics
from podrun.runners.base import DurableRunner, Runner

log = structlog.get_logger(__name__)

LOST_WORKER = "the worker holding the kernel stopped"


async def recover_kernels(
    kernels: KernelLifecycle, lifecycle: RunLifecycle, runner: Runner, heartbeats: Heartbeats
) -> None:
    """Hand over (or end) every kernel whose worker is gone."""
    for kernel in await kernels.held():
        if kernel.worker_id is None or await heartbeats.alive(kernel.worker_id):
            continue
        if isinstance(runner, DurableRunner):
            if await lifecycle.queue.hand_over(kernel.id, kernel.worker_id, function="run_kernel"):
                log.warning("orphaned kernel handed over", kernel_id=str(kernel.id), worker_id=kernel.worker_id)
            continue
        if not await kernels.end(kernel.id, KernelStatus.DEAD, LOST_WORKER):
            continue
        metrics.KERNELS_ENDED.labels(status=KernelStatus.DEAD.value).inc()
        await runner.cleanup(kernel_sandbox_name(kernel.id))
        await cancel_waiting_cells(lifecycle, kernels, kernel.id, LOST_WORKER)
        await lifecycle.queue.release(kernel.owner_id, kernel.id)
        log.warning("orphaned kernel ended", kernel_id=str(kernel.id), worker_id=kernel.worker_id)


async def requeue_unclaimed(kernels: KernelLifecycle, lifecycle: RunLifecycle) -> None:
    """Queue again the kernels that waited too long for a worker (their job may have been lost)."""
    for kernel in await kernels.unclaimed_before(now() - REQUEUE_AFTER):
        await lifecycle.queue.enqueue(
            QueuedRun(kernel.id, kernel.owner_id, kernel.limits.memory_mib, kernel.created_at), function="run_kernel"
        )
