"""Kernels nobody holds any more: their worker died (the kernel is over), or their job was lost (queued again).

A kernel's process lives in its worker's sandbox: when the worker dies, so does the state (the local
runner's sandbox dies with its worker; a pod left behind is removed here). Its row ends DEAD, its
waiting cells are cancelled, its runs-in-progress slot is freed. A cell its worker was running ends
as a run of a dead worker does (executions/orphans.py).
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
from podrun.runners.base import Runner

log = structlog.get_logger(__name__)

LOST_WORKER = "the worker holding the kernel stopped"


async def recover_kernels(
    kernels: KernelLifecycle, lifecycle: RunLifecycle, runner: Runner, heartbeats: Heartbeats
) -> None:
    """End every kernel whose worker is gone."""
    for kernel in await kernels.held():
        if kernel.worker_id is None or await heartbeats.alive(kernel.worker_id):
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
