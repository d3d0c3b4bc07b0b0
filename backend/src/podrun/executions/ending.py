"""How every run ends, whoever ends it (its worker, a cancel in the queue, the sweep of orphans)."""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

import structlog

from podrun.core.statuses import ACTIVE, ExecutionStatus
from podrun.executions.outcomes import Outcome
from podrun.executions.queue import RunQueue
from podrun.executions.repository import ExecutionRepository
from podrun.observability import metrics
from podrun.streams.events import is_terminal
from podrun.streams.log import LogWriter

log = structlog.get_logger(__name__)


async def finish(
    repository: ExecutionRepository,
    queue: RunQueue,
    writer: LogWriter,
    execution_id: UUID,
    outcome: Outcome,
    *,
    log_retention_s: int,
    from_statuses: Collection[ExecutionStatus] = ACTIVE,
) -> bool:
    """End a run: archive its log and outcome in one transaction, then append the terminal event.

    Returns False (and changes nothing) if the run was not in `from_statuses`, so whoever
    finishes a run first wins and nobody finishes it twice.
    """
    entries = list(writer.entries)
    if entries and is_terminal(entries[-1]):
        return False
    terminal = writer.status_event(outcome.status)
    ended = await repository.finish(
        execution_id, outcome, finished_at=terminal.at, entries=[*entries, terminal], from_statuses=from_statuses
    )
    if ended is None:
        return False
    metrics.execution_finished(ended.runtime, outcome.status, outcome.limit_exceeded, ended.started_at, terminal.at)
    await queue.release(ended.owner_id, execution_id)
    await writer.end(terminal, log_retention_s)
    log.info("execution finished", execution_id=str(execution_id), status=outcome.status.value)
    return True
