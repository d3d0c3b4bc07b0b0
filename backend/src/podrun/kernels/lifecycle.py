"""The worker's side of a kernel's row: claim it, mark it idle or busy, find its next cell, end it.

Each step is one short transaction of its own (as executions/lifecycle.py's are for runs), and each status
change a compare-and-set: a kernel is claimed once and ended once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from uuid import UUID

from advanced_alchemy.config import SQLAlchemyAsyncConfig
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from podrun.core.statuses import LIVE_KERNEL, ExecutionStatus, KernelStatus
from podrun.executions.models import Execution
from podrun.executions.repository import now
from podrun.kernels.models import Kernel


class KernelLifecycle:
    """The state changes a worker makes to the kernels it holds. One per process; it holds no session."""

    def __init__(self, db: SQLAlchemyAsyncConfig) -> None:
        self.db = db

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        async with self.db.get_session() as session:
            yield session

    async def claim(self, kernel_id: UUID, worker_id: str) -> Kernel | None:
        """Make this worker the holder of a kernel no worker holds yet; the row, or None if it is not to be had."""
        async with self._session() as session:
            statement = (
                update(Kernel)
                .where(Kernel.id == kernel_id, Kernel.status == KernelStatus.STARTING, Kernel.worker_id.is_(None))
                .values(worker_id=worker_id)
                .returning(Kernel)
                .execution_options(synchronize_session=False)
            )
            claimed = (await session.scalars(statement)).one_or_none()
            await session.commit()
            return claimed

    async def take_over(self, kernel_id: UUID, dead_worker_id: str, worker_id: str) -> Kernel | None:
        """Move a live kernel from a dead worker to this one; the row, or None if another did already (or it ended)."""
        async with self._session() as session:
            statement = (
                update(Kernel)
                .where(Kernel.id == kernel_id, Kernel.worker_id == dead_worker_id, Kernel.status.in_(LIVE_KERNEL))
                .values(worker_id=worker_id)
                .returning(Kernel)
                .execution_options(synchronize_session=False)
            )
            taken = (await session.scalars(statement)).one_or_none()
            await session.commit()
            return taken

    async def load(self, kernel_id: UUID) -> Kernel | None:
        """The kernel's row as it is now."""
        async with self._session() as session:
            return await session.get(Kernel, kernel_id)

    async def mark(
        self, kernel_id: UUID, status: KernelStatus, *, used: bool = False, cells_run: int | None = None
    ) -> bool:
        """IDLE, BUSY or STARTING (a restart) while it lives; `used` sets when it was last used. False if it ended."""
        values: dict[str, object] = {"status": status}
        if used:
            values["last_used_at"] = now()
        if cells_run is not None:
            values["cells_run"] = cells_run
        return await self._change(kernel_id, values, from_statuses=LIVE_KERNEL)

    async def done(self, kernel_id: UUID, request: str) -> None:
        """The owner's request (a restart) was carried out."""
        async with self._session() as session:
            await session.execute(
                update(Kernel).where(Kernel.id == kernel_id, Kernel.request == request).values(request=None)
            )
            await session.commit()

    async def end(self, kernel_id: UUID, status: KernelStatus, error: str | None) -> bool:
        """STOPPED or DEAD, with why; False if it had ended already."""
        values: dict[str, object] = {"status": status, "error": error, "ended_at": now(), "request": None}
        return await self._change(kernel_id, values, from_statuses=LIVE_KERNEL)

    async def _change(self, kernel_id: UUID, values: dict[str, object], from_statuses: Sequence[KernelStatus]) -> bool:
        async with self._session() as session:
            result = await session.execute(
                update(Kernel)
                .where(Kernel.id == kernel_id, Kernel.status.in_(from_statuses))
                .values(**values)
                .returning(Kernel.id)
            )
            changed = result.first() is not None
            await session.commit()
            return changed

    async def next_cell(self, kernel_id: UUID) -> UUID | None:
        """The kernel's oldest cell still QUEUED."""
        async with self._session() as session:
            query = (
                select(Execution.id)
                .where(Execution.kernel_id == kernel_id, Execution.status == ExecutionStatus.QUEUED)
                .order_by(Execution.id)
                .limit(1)
            )
            return await session.scalar(query)

    async def held(self) -> Sequence[Kernel]:
        """Every kernel a worker holds (or was holding when it died)."""
        async with self._session() as session:
            query = select(Kernel).where(Kernel.status.in_(LIVE_KERNEL), Kernel.worker_id.is_not(None))
            return list((await session.scalars(query)).all())

    async def unclaimed_before(self, moment: datetime) -> Sequence[Kernel]:
        """Kernels still waiting for a worker that were started before `moment` (their job may be lost)."""
        async with self._session() as session:
            query = select(Kernel).where(
                Kernel.status == KernelStatus.STARTING, Kernel.worker_id.is_(None), Kernel.created_at < moment
            )
            return list((await session.scalars(query)).all())

    async def waiting_cells(self, kernel_id: UUID) -> list[UUID]:
        """The kernel's cells that have not started."""
        async with self._session() as session:
            query = select(Execution.id).where(
                Execution.kernel_id == kernel_id, Execution.status == ExecutionStatus.QUEUED
            )
            return list((await session.scalars(query)).all())
