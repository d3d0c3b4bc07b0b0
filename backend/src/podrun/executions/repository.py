"""The execution rows: the only code that writes them, and the queries the rules need.

Every state change is one conditional UPDATE that names the statuses it moves from, so two actors
(a worker and a cancel, two workers after a crash) can never both win, and a row is never half
written: the final one writes the outcome and the archived log in one transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import func, select, update

from podrun.accounts.models import Role, User
from podrun.core.statuses import ACTIVE, STARTED, ExecutionStatus
from podrun.executions.models import Execution, ExecutionLog
from podrun.executions.outcomes import Outcome
from podrun.fair_queue import QueuedRun


@dataclass(frozen=True, slots=True)
class RunCounts:
    """How many runs of one user wait for a worker, and how many a worker holds."""

    queued: int = 0
    running: int = 0


class ExecutionRepository(SQLAlchemyAsyncRepository[Execution]):
    """Execution rows."""

    model_type = Execution

    async def claim(self, execution_id: UUID, worker_id: str) -> bool:
        """QUEUED -> STARTING for this worker; False if the run is not QUEUED any more."""
        return await self._move(
            execution_id,
            (ExecutionStatus.QUEUED,),
            status=ExecutionStatus.STARTING,
            worker_id=worker_id,
            attempts=Execution.attempts + 1,
        )

    async def take_over(self, execution_id: UUID, dead_worker_id: str, worker_id: str) -> bool:
        """Move a started run from a dead worker to this one; False if another did already (or it ended)."""
        statement = (
            update(Execution)
            .where(Execution.id == execution_id, Execution.worker_id == dead_worker_id, Execution.status.in_(STARTED))
            .values(worker_id=worker_id, attempts=Execution.attempts + 1)
            .returning(Execution.id)
        )
        return await self._commit(statement)

    async def mark_running(self, execution_id: UUID, started_at: datetime) -> bool:
        """STARTING -> RUNNING; False if the run ended meanwhile."""
        return await self._move(
            execution_id, (ExecutionStatus.STARTING,), status=ExecutionStatus.RUNNING, started_at=started_at
        )

    async def finish(
        self,
        execution_id: UUID,
        outcome: Outcome,
        *,
        finished_at: datetime,
        stdout: str,
        stderr: str,
        events: list[dict[str, Any]],
        from_statuses: Collection[ExecutionStatus] = ACTIVE,
    ) -> UUID | None:
        """Record the outcome and archive the whole event log, in one transaction; the run's owner, or None
        (and nothing changed) if the run was not in `from_statuses`."""
        statement = (
            update(Execution)
            .where(Execution.id == execution_id, Execution.status.in_(from_statuses))
            .values(
                status=outcome.status,
                finished_at=finished_at,
                exit_code=outcome.exit_code,
                signal=outcome.signal,
                limit_exceeded=outcome.limit_exceeded,
                error=outcome.error,
                usage_wall_time_ms=outcome.usage.wall_time_ms,
                usage_cpu_time_ms=outcome.usage.cpu_time_ms,
                usage_peak_memory_kib=outcome.usage.peak_memory_kib,
                output_truncated=outcome.output_truncated,
                stdout=stdout,
                stderr=stderr,
            )
            .returning(Execution.owner_id)
        )
        owner_id = (await self.session.execute(statement)).scalar_one_or_none()
        if owner_id is None:
            await self.session.rollback()
            return None
        self.session.add(ExecutionLog(execution_id=execution_id, events=events))
        await self.session.commit()
        return owner_id

    async def archived_events(self, execution_id: UUID) -> list[dict[str, Any]] | None:
        """The archived log of a finished run; None while it has not finished."""
        return await self.session.scalar(select(ExecutionLog.events).where(ExecutionLog.execution_id == execution_id))

    async def input_files(self, execution_id: UUID) -> list[dict[str, str]]:
        """The input files of a run (a deferred column: only the worker starting the run reads it)."""
        files = await self.session.scalar(select(Execution.files).where(Execution.id == execution_id))
        return files or []

    async def started(self) -> Sequence[Execution]:
        """Every run a worker holds (STARTING or RUNNING)."""
        return (await self.session.scalars(select(Execution).where(Execution.status.in_(STARTED)))).unique().all()

    async def queued_before(self, moment: datetime) -> list[QueuedRun]:
        """Runs still QUEUED that were submitted before `moment`, as the scheduler queues them."""
        query = select(Execution.id, Execution.owner_id, Execution.limits, Execution.created_at).where(
            Execution.status == ExecutionStatus.QUEUED, Execution.created_at < moment
        )
        rows = await self.session.execute(query)
        return [QueuedRun(row.id, row.owner_id, row.limits.memory_mib, row.created_at) for row in rows]

    async def run_counts(self, owner_ids: Collection[UUID]) -> dict[UUID, RunCounts]:
        """Queued and running (STARTING or RUNNING) runs of each of `owner_ids`, in one query."""
        if not owner_ids:
            return {}
        query = (
            select(Execution.owner_id, Execution.status, func.count())
            .where(Execution.owner_id.in_(owner_ids), Execution.status.in_(ACTIVE))
            .group_by(Execution.owner_id, Execution.status)
        )
        queued: dict[UUID, int] = {}
        running: dict[UUID, int] = {}
        for owner_id, status, count in await self.session.execute(query):
            tally = queued if status is ExecutionStatus.QUEUED else running
            tally[owner_id] = tally.get(owner_id, 0) + count
        return {owner: RunCounts(queued.get(owner, 0), running.get(owner, 0)) for owner in owner_ids}

    async def ended_among(self, execution_ids: Collection[UUID]) -> Sequence[UUID]:
        """Those of `execution_ids` whose run has ended (ids without a row are not among them)."""
        if not execution_ids:
            return []
        query = select(Execution.id).where(Execution.id.in_(execution_ids), Execution.status.not_in(ACTIVE))
        return (await self.session.scalars(query)).all()

    async def page(
        self, user: User, first: int, before: UUID | None, status: ExecutionStatus | None, owner_id: UUID | None
    ) -> list[Execution]:
        """Up to `first` runs `user` may see (of `owner_id` only, if given), newest first, older than `before`."""
        query = select(Execution).order_by(Execution.id.desc()).limit(first)
        if user.role is not Role.ADMIN:
            query = query.where(Execution.owner_id == user.id)
        if owner_id is not None:
            query = query.where(Execution.owner_id == owner_id)
        if status is not None:
            query = query.where(Execution.status == status)
        if before is not None:
            query = query.where(Execution.id < before)
        return list((await self.session.scalars(query)).unique())

    async def _move(self, execution_id: UUID, from_statuses: Collection[ExecutionStatus], **values: object) -> bool:
        statement = (
            update(Execution)
            .where(Execution.id == execution_id, Execution.status.in_(from_statuses))
            .values(**values)
            .returning(Execution.id)
        )
        return await self._commit(statement)

    async def _commit(self, statement: Any) -> bool:
        changed = (await self.session.execute(statement)).scalar_one_or_none()
        await self.session.commit()
        return changed is not None
