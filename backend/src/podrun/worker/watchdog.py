"""Each worker's heartbeat, and the sweep that keeps runs from being stuck.

Policy for a worker that dies mid-run (kill -9, lost machine): its sandbox dies with it
(bubblewrap's --die-with-parent), so the run cannot go on; it ends as ERROR, with the output it
produced kept, once its worker's heartbeat has been silent for `worker_heartbeat_ttl_s` and the
next sweep of any live worker runs: within heartbeat TTL + sweep interval (10 s + 3 s by default).
Runs are not re-executed: a script may not be safe to run twice, and its watchers already saw
part of its output. A QUEUED run whose job was lost (Redis failed after the row was committed) is
enqueued again; arq ignores the duplicate when the job still exists.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import select

from podrun.executions.models import Execution, ExecutionStatus
from podrun.executions.service import ExecutionService, enqueue
from podrun.worker.jobs import WorkerContext, end_orphan, worker_alive

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
                await end_orphan(worker, service, execution)
        stale = await service.repository.session.scalars(
            select(Execution.id).where(
                Execution.status == ExecutionStatus.QUEUED,
                Execution.created_at < datetime.now(UTC) - REQUEUE_AFTER,
            )
        )
        for execution_id in stale:
            await enqueue(worker.redis, execution_id)


async def keep_watch(worker: WorkerContext) -> None:
    """Beat and sweep until cancelled; a failing round is logged and retried."""
    while True:
        try:
            await beat(worker)
            await sweep(worker)
        except Exception:
            log.exception("watchdog round failed")
        await asyncio.sleep(min(worker.settings.worker_heartbeat_interval_s, worker.settings.watchdog_interval_s))
