"""Each worker's heartbeat, and the sweep that keeps runs from being stuck.

Policy for a worker that dies mid-run (kill -9, lost machine), noticed once its heartbeat has been
silent for `worker_heartbeat_ttl_s` and the next sweep of any live worker runs (within heartbeat
TTL + sweep interval, 10 s + 3 s by default):
- local runner: its sandbox died with it (bubblewrap's --die-with-parent), so the run cannot go
  on; it ends as ERROR, with the output it produced kept.
- durable runners (Kubernetes): the sandbox lives on without its worker, so a re-attach job hands
  the run to a live worker, which follows the same pod and logs only output not logged yet. A
  periodic reaper removes sandboxes whose run is over (or unknown).
Runs are never re-executed: a script may not be safe to run twice, and its watchers already saw
part of its output. A QUEUED run whose job was lost (Redis failed after the row was committed) is
enqueued again; arq ignores the duplicate when the job still exists.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

import structlog
from sqlalchemy import select

from podrun.executions.models import Execution, ExecutionStatus
from podrun.executions.service import ExecutionService, enqueue
from podrun.runners.base import DurableRunner
from podrun.worker.jobs import WorkerContext, recover_orphan, worker_alive

log = structlog.get_logger(__name__)

REQUEUE_AFTER = timedelta(seconds=30)


async def beat(worker: WorkerContext) -> None:
    """Refresh this worker's heartbeat."""
    await worker.redis.set(worker.keys.worker(worker.worker_id), "1", ex=worker.settings.worker_heartbeat_ttl_s)


async def sweep(worker: WorkerContext) -> None:
    """End runs whose worker is gone and re-enqueue QUEUED runs that have waited too long."""
    async with ExecutionService.new(config=worker.db) as service:
        active = await service.repository.session.scalars(
            select(Execution).where(Execution.status.in_((ExecutionStatus.STARTING, ExecutionStatus.RUNNING)))
        )
        for execution in list(active.unique()):
            if not await worker_alive(worker.redis, worker.keys, execution.worker_id):
                await recover_orphan(worker, service, execution)
        stale = await service.repository.session.scalars(
            select(Execution.id).where(
                Execution.status == ExecutionStatus.QUEUED,
                Execution.created_at < datetime.now(UTC) - REQUEUE_AFTER,
            )
        )
        for execution_id in stale:
            await enqueue(worker.redis, execution_id)


async def reap(runner: DurableRunner, worker: WorkerContext) -> None:
    """Remove sandboxes whose execution is over or unknown (the runner also removes long-overdue ones)."""

    async def in_progress(execution_id: UUID) -> bool:
        async with ExecutionService.new(config=worker.db) as service:
            execution = await service.get_one_or_none(id=execution_id)
            return execution is not None and not execution.status.terminal

    await runner.reap(in_progress)


async def keep_watch(worker: WorkerContext) -> None:
    """Beat and sweep (and reap, for durable runners) until cancelled; a failing round is logged and retried."""
    next_reap = 0.0
    while True:
        try:
            await beat(worker)
            await sweep(worker)
            if isinstance(worker.runner, DurableRunner) and time.monotonic() >= next_reap:
                next_reap = time.monotonic() + worker.settings.kubernetes_reap_interval_s
                await reap(worker.runner, worker)
        except Exception:
            log.exception("watchdog round failed")
        await asyncio.sleep(min(worker.settings.worker_heartbeat_interval_s, worker.settings.watchdog_interval_s))
