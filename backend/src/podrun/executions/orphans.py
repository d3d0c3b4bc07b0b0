"""Runs nobody is driving any more: started ones whose worker died, queued ones whose job was lost.

Policy for a worker that dies mid-run (kill -9, lost machine), noticed once its heartbeat has been
silent for its TTL and the next sweep of any live worker runs (heartbeat TTL + sweep interval):
- local runner: its sandbox died with it (bubblewrap's --die-with-parent), so the run cannot go
  on; it ends as ERROR, with the output it produced kept.
- durable runners (Kubernetes): the sandbox lives on without its worker, so a re-attach job hands
  the run to a live worker, which follows the same pod and logs only output not logged yet.
Runs are never re-executed: a script may not be safe to run twice, and its watchers already saw
part of its output. A QUEUED run whose job was lost (Redis failed after the row was committed) is
enqueued again; arq ignores the duplicate when the job still exists.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from podrun.core.statuses import ExecutionStatus
from podrun.executions.heartbeats import Heartbeats
from podrun.executions.lifecycle import RunLifecycle
from podrun.executions.models import Execution
from podrun.executions.outcomes import LOST_WORKER_ERROR, Outcome
from podrun.executions.repository import now
from podrun.runners.base import DurableRunner, Runner, sandbox_name
from podrun.streams.log import LogWriter

log = structlog.get_logger(__name__)

# Longer than the moment between the API's commit and its own enqueue.
REQUEUE_AFTER = timedelta(seconds=10)


async def recover_orphans(lifecycle: RunLifecycle, runner: Runner, heartbeats: Heartbeats) -> None:
    """Hand over or end every started run whose worker is gone."""
    for execution in await lifecycle.started():
        if not await heartbeats.alive(execution.worker_id):
            await recover_orphan(lifecycle, runner, execution)


async def recover_orphan(lifecycle: RunLifecycle, runner: Runner, execution: Execution) -> None:
    """A started run whose worker is gone: re-attach to its sandbox where it survives, else end it as ERROR.

    A kernel's cell always ends: the kernel ended with the worker holding it, or (durable runners) is handed
    over on its own and interrupted by the worker taking it over (kernels/orphans.py).
    """
    if not isinstance(runner, DurableRunner) or execution.kernel_id is not None:
        await end_orphan(lifecycle, runner, execution)
        return
    if execution.worker_id is not None and await lifecycle.queue.hand_over(execution.id, execution.worker_id):
        log.warning("orphaned execution handed over", execution_id=str(execution.id), worker_id=execution.worker_id)


async def end_orphan(lifecycle: RunLifecycle, runner: Runner, execution: Execution) -> None:
    """End a run whose worker is gone as ERROR and remove what its sandbox left on this host."""
    await runner.cleanup(sandbox_name(execution.id))
    writer = await LogWriter.resume(lifecycle.event_log(execution.id))
    lost = Outcome(ExecutionStatus.ERROR, error=LOST_WORKER_ERROR)
    if await lifecycle.finish(execution.id, lost, writer):
        log.warning("orphaned execution ended", execution_id=str(execution.id), worker_id=execution.worker_id)


async def requeue_stale(lifecycle: RunLifecycle) -> None:
    """Enqueue again the QUEUED runs that have waited too long (their job may have been lost)."""
    for run in await lifecycle.queued_before(now() - REQUEUE_AFTER):
        await lifecycle.queue.enqueue(run)
