"""Retention: ended runs older than their owner's role keeps them are deleted by the workers, in bounded batches.

Each batch is one transaction that deletes the rows (their archived logs and artifacts cascade) and gives their
bytes back to their owners; rows another worker's sweep holds are skipped. Only ended runs have a finish time,
so a run still going is never touched.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from podrun.executions.repository import now
from podrun.executions.service import ExecutionService
from podrun.policy.store import PolicyStore

log = structlog.get_logger(__name__)

# Batches one sweep deletes at most per role, so a large backlog is worked off over several rounds.
MAX_BATCHES_PER_SWEEP = 10


async def delete_expired(executions: ExecutionService, policies: PolicyStore, batch: int) -> int:
    """Delete runs past their retention, at most `batch` per transaction; how many were deleted."""
    policy = await policies.current()
    total = 0
    for role, values in policy.roles.items():
        finished_before = now() - timedelta(days=values.retention_days)
        for _ in range(MAX_BATCHES_PER_SWEEP):
            deleted = await executions.delete_expired(role, finished_before, batch)
            total += deleted
            if deleted < batch:
                break
    if total:
        log.info("expired executions deleted", count=total)
    return total
