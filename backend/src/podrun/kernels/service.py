"""The API's side of kernels: start one, send it cells, restart or stop it, and read them.

A kernel is queued like a run (fair queue, quota slot, arq job `run_kernel`) and held by the worker that
claims it for as long as it lives (kernels/session.py). Its cells are executions with its id: stored
QUEUED here, then run one by one, oldest first, by that worker, which a push on the kernel's wake list
tells at once (and its own poll of the rows finds anyway: the rows are the record). Stop and restart
are requests on the row, which the worker carries out; a kernel no worker holds yet is stopped here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

import structlog
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from uuid_utils.compat import uuid7

from podrun import ratelimit
from podrun.accounts.models import Role, User
from podrun.core.errors import BadUserInput, Conflict, NotFound, RateLimited
from podrun.core.pages import check_first, decode_cursor
from podrun.core.statuses import LIVE_KERNEL, ExecutionStatus, KernelStatus
from podrun.core.text import check_text
from podrun.executions import ending
from podrun.executions.models import Execution
from podrun.executions.outcomes import Outcome
from podrun.executions.queue import RunQueue
from podrun.executions.repository import ExecutionRepository, now
from podrun.executions.service import ACTIVE_RETRY_MS, storage_full
from podrun.fair_queue import QueuedRun
from podrun.kernels.models import Kernel
from podrun.kernels.wakes import wake
from podrun.observability import metrics
from podrun.policy.store import PolicyStore
from podrun.quotas import Refusal, SubmitQuota
from podrun.redis_client import Keys
from podrun.runners.catalog import RuntimeCatalog, resolve_limits
from podrun.settings import Settings
from podrun.streams.control import Cancel, ControlStream
from podrun.streams.log import EventLog, LogWriter

log = structlog.get_logger(__name__)

CURSOR_KIND = "kernel"
CELL_CURSOR_KIND = "cell"
# stopKernel and restartKernel wait this long for the worker to have done it, so they can answer with the result.
REQUEST_WAIT_S = 3.0
STOP, RESTART = "STOP", "RESTART"
STOPPED_BY_OWNER = "stopped by its owner"
CELL_DROPPED = "the kernel was {what} before this cell ran"


class KernelRepository(SQLAlchemyAsyncRepository[Kernel]):
    """The kernels table."""

    model_type = Kernel


@dataclass(frozen=True, slots=True)
class KernelPage:
    """One page of kernels, newest first."""

    kernels: list[Kernel]
    has_next_page: bool


@dataclass(frozen=True, slots=True)
class CellPage:
    """One page of a kernel's cells, oldest first."""

    cells: list[Execution]
    has_next_page: bool


class KernelService(SQLAlchemyAsyncRepositoryService[Kernel, KernelRepository]):
    """Kernels and their cells, as their owners see and drive them."""

    repository_type = KernelRepository

    def __init__(
        self,
        session: AsyncSession,
        *,
        settings: Settings,
        redis: ArqRedis,
        keys: Keys,
        catalog: RuntimeCatalog,
        policy: PolicyStore,
    ) -> None:
        super().__init__(session=session)
        self.settings = settings
        self.redis = redis
        self.keys = keys
        self.catalog = catalog
        self.policy = policy
        self.queue = RunQueue(redis, keys)
        self.executions = ExecutionRepository(session=session)

    async def start(
        self, owner: User, runtime_id: str | None, limits: Mapping[str, int | None], idle_timeout_s: int | None
    ) -> Kernel:
        """Store a kernel as STARTING, take one of its owner's runs-in-progress slots, and queue it for a worker."""
        caps = self.settings.kernels
        idle = caps.idle_timeout_s if idle_timeout_s is None else idle_timeout_s
        if not 1 <= idle <= caps.max_idle_timeout_s:
            raise BadUserInput(f"idleTimeoutS must be between 1 and {caps.max_idle_timeout_s}")
        system = await self.policy.current()
        role = system.for_role(owner.role)
        runtime = self.catalog.get(runtime_id)
        resolved = resolve_limits(runtime, limits, default=role.default_limits, maximum=role.max_limits)
        kernel = Kernel(
            id=uuid7(), owner_id=owner.id, runtime=runtime.id, limits=resolved, idle_timeout_s=idle, cells_run=0
        )
        quota = SubmitQuota(role.submissions_per_minute, role.active_executions, system.queued_executions_cap)
        refusal = await self.queue.quotas.take_or_refuse(str(owner.id), str(kernel.id), quota)
        if refusal is Refusal.ACTIVE:
            raise RateLimited(
                f"you have {quota.active_executions} runs and kernels in progress; stop a kernel or wait for a run",
                retry_after_ms=ACTIVE_RETRY_MS,
            )
        try:
            kernel = await self.create(kernel, auto_commit=True, auto_refresh=False)
        except BaseException:
            await self.queue.quotas.release(str(owner.id), str(kernel.id))
            raise
        try:
            await self.queue.enqueue(
                QueuedRun(kernel.id, owner.id, resolved.memory_mib, kernel.created_at), function="run_kernel"
            )
        except RedisError as exc:
            log.warning("kernel stored, enqueue deferred", kernel_id=str(kernel.id), error=type(exc).__name__)
        log.info("kernel started", kernel_id=str(kernel.id), runtime=runtime.id)
        metrics.KERNELS_STARTED.labels(runtime=runtime.id).inc()
        return kernel

    async def visible(self, user: User, kernel_id: str | UUID) -> Kernel:
        """The kernel if `user` owns it (or is an admin); NOT_FOUND otherwise."""
        try:
            key = kernel_id if isinstance(kernel_id, UUID) else UUID(kernel_id)
        except ValueError as error:
            raise NotFound("kernel not found") from error
        kernel = await self.get_one_or_none(id=key)
        if kernel is None or (kernel.owner_id != user.id and user.role is not Role.ADMIN):
            raise NotFound("kernel not found")
        return kernel

    async def page(self, user: User, first: int, after: str | None) -> KernelPage:
        """`user`'s kernels, newest first, after the cursor `after`."""
        check_first(first)
        query = select(Kernel).where(Kernel.owner_id == user.id).order_by(Kernel.id.desc()).limit(first + 1)
        if after is not None:
            query = query.where(Kernel.id < decode_cursor(after, CURSOR_KIND))
        rows = list((await self.repository.session.scalars(query)).all())
        return KernelPage(kernels=rows[:first], has_next_page=len(rows) > first)

    async def cells(self, kernel_id: UUID, first: int, after: str | None) -> CellPage:
        """A kernel's cells, oldest first (the order they ran in), after the cursor `after`."""
        check_first(first)
        query = select(Execution).where(Execution.kernel_id == kernel_id).order_by(Execution.id).limit(first + 1)
        if after is not None:
            query = query.where(Execution.id > decode_cursor(after, CELL_CURSOR_KIND))
        rows = list((await self.repository.session.scalars(query)).all())
        return CellPage(cells=rows[:first], has_next_page=len(rows) > first)

    async def queued_cells(self, kernel_ids: Sequence[UUID]) -> dict[UUID, int]:
        """How many cells wait in each of these kernels."""
        query = (
            select(Execution.kernel_id, func.count())
            .where(Execution.kernel_id.in_(kernel_ids), Execution.status == ExecutionStatus.QUEUED)
            .group_by(Execution.kernel_id)
        )
        rows = (await self.repository.session.execute(query)).all()
        return {kernel_id: count for kernel_id, count in rows if kernel_id is not None}

    async def run_cell(self, owner: User, kernel_id: str, code: str) -> Execution:
        """Store a cell of the kernel as a QUEUED execution and wake the kernel's worker; it runs after the cells
        before it. CONFLICT for a kernel that has ended."""
        kernel = await self.visible(owner, kernel_id)
        if kernel.owner_id != owner.id:
            raise NotFound("kernel not found")  # an admin may read another's kernel, not run code in it
        check_text("code", code, self.settings.limits.script_bytes)
        if kernel.status.ended:
            raise Conflict(f"the kernel is {kernel.status.value}: start a new one")
        role = (await self.policy.current()).for_role(owner.role)
        await ratelimit.hit(
            self.redis, self.keys.rate("cells", str(owner.id)), role.submissions_per_minute, 60, "cells"
        )
        cell = Execution(
            id=uuid7(),
            owner_id=owner.id,
            runtime=kernel.runtime,
            script=code,
            stdin=None,
            limits=kernel.limits,
            kernel_id=kernel.id,
            status=ExecutionStatus.QUEUED,
            stored_bytes=len(code.encode()),
        )
        # Stored as a submission is: the row and its bytes counted against the owner's storage in one statement.
        if not await self.executions.insert_reserving(cell, role.storage_bytes):
            await storage_full(self.executions, owner, role)
        set_committed_value(cell, "owner", owner)
        await self._wake(kernel.id)
        log.info("cell submitted", kernel_id=str(kernel.id), execution_id=str(cell.id))
        return cell

    async def restart(self, user: User, kernel_id: str) -> Kernel:
        """Give the kernel a fresh process (its state is gone; its cells waiting are cancelled)."""
        return await self._request(user, kernel_id, RESTART)

    async def stop(self, user: User, kernel_id: str) -> Kernel:
        """Stop the kernel and free its sandbox (a running cell is interrupted first). Stopping an ended kernel
        changes nothing."""
        return await self._request(user, kernel_id, STOP)

    async def _request(self, user: User, kernel_id: str, request: str) -> Kernel:
        kernel = await self.visible(user, kernel_id)
        if kernel.status.ended:
            if request == STOP:
                return kernel
            raise Conflict(f"the kernel is {kernel.status.value}: start a new one")
        if request == STOP and await self._stop_unclaimed(kernel):
            await self.repository.session.refresh(kernel)
            return kernel
        await self.repository.session.execute(
            update(Kernel).where(Kernel.id == kernel.id, Kernel.status.in_(LIVE_KERNEL)).values(request=request)
        )
        await self.repository.session.commit()
        await self._drop_cells(kernel.id, "stopped" if request == STOP else "restarted")
        await self._wake(kernel.id)
        return await self._until_done(kernel, request)

    async def _stop_unclaimed(self, kernel: Kernel) -> bool:
        """Stop a kernel no worker holds yet, here; whether it was one."""
        result = await self.repository.session.execute(
            update(Kernel)
            .where(Kernel.id == kernel.id, Kernel.status == KernelStatus.STARTING, Kernel.worker_id.is_(None))
            .values(status=KernelStatus.STOPPED, error=STOPPED_BY_OWNER, ended_at=now())
            .returning(Kernel.id)
        )
        stopped = result.first() is not None
        await self.repository.session.commit()
        if stopped:
            await self.queue.release(kernel.owner_id, kernel.id)
            await self._drop_cells(kernel.id, "stopped")
        return stopped

    async def _drop_cells(self, kernel_id: UUID, what: str) -> None:
        """Cancel the kernel's cells still waiting, and interrupt the one running."""
        query = select(Execution.id, Execution.status).where(
            Execution.kernel_id == kernel_id,
            Execution.status.in_((ExecutionStatus.QUEUED, ExecutionStatus.STARTING, ExecutionStatus.RUNNING)),
        )
        for cell_id, status in (await self.repository.session.execute(query)).all():
            if status is ExecutionStatus.QUEUED:
                writer = await LogWriter.resume(EventLog(self.redis, self.keys, cell_id))
                outcome = Outcome(ExecutionStatus.CANCELLED, error=CELL_DROPPED.format(what=what))
                await ending.finish(
                    self.executions,
                    self.queue,
                    writer,
                    cell_id,
                    outcome,
                    log_retention_s=self.settings.log_retention_s,
                    from_statuses=(ExecutionStatus.QUEUED,),
                )
            else:
                await ControlStream(self.redis, self.keys, cell_id).send(Cancel())

    async def _until_done(self, kernel: Kernel, request: str) -> Kernel:
        """The kernel once its worker has carried out `request`, or after REQUEST_WAIT_S if it has not yet."""
        deadline = asyncio.get_running_loop().time() + REQUEST_WAIT_S
        while True:
            await self.repository.session.refresh(kernel)
            await self.repository.session.commit()
            done = kernel.request is None and (request != STOP or kernel.status.ended)
            if done or kernel.status.ended or asyncio.get_running_loop().time() > deadline:
                return kernel
            await asyncio.sleep(0.05)

    async def _wake(self, kernel_id: UUID) -> None:
        await wake(self.redis, self.keys, kernel_id)
