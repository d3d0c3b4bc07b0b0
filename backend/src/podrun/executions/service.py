"""The rules of executions: submitting, reading, cancelling, input, and how a run ends."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import structlog
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from arq.connections import ArqRedis
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from podrun.accounts.models import Role, User
from podrun.errors import BadUserInput, Conflict, NotFound, RateLimited
from podrun.executions.models import Execution, ExecutionLog, ExecutionStatus
from podrun.ratelimit import hit
from podrun.redis_client import Keys
from podrun.runners.base import LimitKind, Stream, Usage
from podrun.runners.catalog import RuntimeCatalog, resolve_limits
from podrun.settings import Settings
from podrun.streams.events import Event, from_json, is_terminal, joined_output, to_json
from podrun.streams.log import EventLog, LogWriter

log = structlog.get_logger(__name__)

ACTIVE = (ExecutionStatus.QUEUED, ExecutionStatus.STARTING, ExecutionStatus.RUNNING)
MAX_PAGE = 100
ACTIVE_RETRY_MS = 1000
# cancelExecution waits this long for a started run to stop, so it can answer with CANCELLED.
CANCEL_WAIT_S = 2.0


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """What a client asked to run."""

    script: str
    runtime: str | None = None
    stdin: str | None = None
    limits: dict[str, int | None] = field(default_factory=dict)
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended, as recorded on its row."""

    status: ExecutionStatus
    exit_code: int | None = None
    signal: int | None = None
    limit_exceeded: LimitKind | None = None
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    output_truncated: bool = False


@dataclass(frozen=True, slots=True)
class Page:
    """One page of executions, newest first."""

    executions: list[Execution]
    has_next_page: bool


class ExecutionService(SQLAlchemyAsyncRepositoryService[Execution]):
    """Executions and their state changes. Every change that ends a run goes through `finish`."""

    class Repository(SQLAlchemyAsyncRepository[Execution]):
        """Execution rows."""

        model_type = Execution

    repository_type = Repository

    async def submit(
        self, owner: User, request: SubmitRequest, catalog: RuntimeCatalog, settings: Settings, queue: ArqRedis
    ) -> Execution:
        """Validate, store as QUEUED, commit, then enqueue. A repeated idempotency key returns the first run."""
        _check_text("script", request.script, settings.max_script_bytes)
        if request.stdin is not None:
            _check_text("stdin", request.stdin, settings.max_stdin_bytes)
        if request.idempotency_key is not None:
            _check_text("idempotencyKey", request.idempotency_key, 255)
            if existing := await self._by_idempotency_key(owner, request):
                return existing
        runtime = catalog.get(request.runtime)
        limits = resolve_limits(runtime, request.limits)
        await self._check_quota(owner, settings, queue)
        execution = Execution(
            owner_id=owner.id,
            runtime=runtime.id,
            script=request.script,
            stdin=request.stdin,
            idempotency_key=request.idempotency_key,
            wall_time_ms=limits.wall_time_ms,
            cpu_time_ms=limits.cpu_time_ms,
            memory_mib=limits.memory_mib,
            output_bytes=limits.output_bytes,
            processes=limits.processes,
            status=ExecutionStatus.QUEUED,
        )
        try:
            execution = await self.create(execution, auto_commit=True)
        except IntegrityError:
            await self.repository.session.rollback()
            if request.idempotency_key is not None and (existing := await self._by_idempotency_key(owner, request)):
                return existing
            raise
        await enqueue(queue, execution.id)
        log.info("execution submitted", execution_id=str(execution.id), runtime=runtime.id)
        return await self.get(execution.id)

    async def _check_quota(self, owner: User, settings: Settings, redis: ArqRedis) -> None:
        """RATE_LIMITED when the user has too many runs in progress or submits too fast."""
        active = await self.count(Execution.owner_id == owner.id, Execution.status.in_(ACTIVE))
        if active >= settings.max_active_executions_per_user:
            raise RateLimited(
                f"you have {active} runs in progress; wait for one to finish", retry_after_ms=ACTIVE_RETRY_MS
            )
        key = Keys(settings.redis_prefix).rate("submit", str(owner.id))
        await hit(redis, key, settings.submissions_per_minute, 60, "submissions")

    async def _by_idempotency_key(self, owner: User, request: SubmitRequest) -> Execution | None:
        existing = await self.get_one_or_none(owner_id=owner.id, idempotency_key=request.idempotency_key)
        if existing is not None and (existing.script != request.script or existing.stdin != request.stdin):
            raise Conflict("this idempotencyKey was already used for a different script")
        return existing

    async def visible(self, user: User, execution_id: str | UUID) -> Execution:
        """The execution if `user` may see it (owner or admin); NOT_FOUND otherwise."""
        try:
            key = execution_id if isinstance(execution_id, UUID) else UUID(execution_id)
        except ValueError as error:
            raise NotFound("execution not found") from error
        execution = await self.get_one_or_none(id=key)
        if execution is None or (execution.owner_id != user.id and user.role is not Role.ADMIN):
            raise NotFound("execution not found")
        return execution

    async def page(self, user: User, first: int, after: str | None, status: ExecutionStatus | None) -> Page:
        """Executions `user` may see, newest first, after the cursor `after`."""
        if not 1 <= first <= MAX_PAGE:
            raise BadUserInput(f"first must be between 1 and {MAX_PAGE}")
        query = select(Execution).order_by(Execution.id.desc()).limit(first + 1)
        if user.role is not Role.ADMIN:
            query = query.where(Execution.owner_id == user.id)
        if status is not None:
            query = query.where(Execution.status == status)
        if after is not None:
            query = query.where(Execution.id < decode_cursor(after))
        rows = list((await self.repository.session.scalars(query)).unique())
        return Page(executions=rows[:first], has_next_page=len(rows) > first)

    async def claim(self, execution_id: UUID, worker_id: str) -> Execution | None:
        """Move a QUEUED run to STARTING for this worker; None if it is not QUEUED any more."""
        return await self._transition(
            execution_id,
            (ExecutionStatus.QUEUED,),
            status=ExecutionStatus.STARTING,
            worker_id=worker_id,
            attempts=Execution.attempts + 1,
        )

    async def mark_running(self, execution_id: UUID) -> Execution | None:
        """STARTING -> RUNNING; None if the run ended meanwhile."""
        return await self._transition(
            execution_id, (ExecutionStatus.STARTING,), status=ExecutionStatus.RUNNING, started_at=datetime.now(UTC)
        )

    async def _transition(
        self, execution_id: UUID, from_statuses: Collection[ExecutionStatus], **values: object
    ) -> Execution | None:
        statement = (
            update(Execution)
            .where(Execution.id == execution_id, Execution.status.in_(from_statuses))
            .values(**values)
            .returning(Execution.id)
        )
        changed = (await self.repository.session.execute(statement)).scalar_one_or_none()
        await self.repository.session.commit()
        if changed is None:
            return None
        return await self.get(execution_id)

    async def finish(
        self,
        execution_id: UUID,
        outcome: Outcome,
        writer: LogWriter,
        settings: Settings,
        from_statuses: Collection[ExecutionStatus] = ACTIVE,
    ) -> bool:
        """End a run: archive its log and outcome in one transaction, then append the terminal event.

        Returns False (and changes nothing) if the run was not in `from_statuses`, so whoever
        finishes a run first wins and nobody finishes it twice.
        """
        events = await writer.log.read_all()
        if events and is_terminal(events[-1]):
            return False
        writer.seq = events[-1].seq if events else writer.seq
        terminal = writer.status_event(outcome.status)
        statement = (
            update(Execution)
            .where(Execution.id == execution_id, Execution.status.in_(from_statuses))
            .values(
                status=outcome.status,
                finished_at=terminal.at,
                exit_code=outcome.exit_code,
                signal=outcome.signal,
                limit_exceeded=outcome.limit_exceeded,
                error=outcome.error,
                usage_wall_time_ms=outcome.usage.wall_time_ms,
                usage_cpu_time_ms=outcome.usage.cpu_time_ms,
                usage_peak_memory_kib=outcome.usage.peak_memory_kib,
                output_truncated=outcome.output_truncated,
                stdout=joined_output(events, Stream.STDOUT),
                stderr=joined_output(events, Stream.STDERR),
            )
            .returning(Execution.id)
        )
        session = self.repository.session
        if (await session.execute(statement)).scalar_one_or_none() is None:
            await session.rollback()
            return False
        session.add(ExecutionLog(execution_id=execution_id, events=[to_json(e) for e in [*events, terminal]]))
        await session.commit()
        await writer.status(terminal)
        await writer.log.expire(settings.log_retention_s)
        log.info("execution finished", execution_id=str(execution_id), status=outcome.status.value)
        return True

    async def archived_events(self, execution_id: UUID) -> list[Event] | None:
        """The archived log of a finished run; None while it has not finished."""
        archive = await self.repository.session.scalar(
            select(ExecutionLog.events).where(ExecutionLog.execution_id == execution_id)
        )
        return None if archive is None else [from_json(item) for item in archive]

    async def cancel(self, user: User, execution_id: str, redis: ArqRedis, settings: Settings) -> Execution:
        """Cancel a run: a QUEUED one here and now, a started one by telling its worker."""
        execution = await self.visible(user, execution_id)
        if execution.status.terminal:
            if execution.status is ExecutionStatus.CANCELLED:
                return execution
            raise Conflict(f"execution already ended with status {execution.status.value}")
        key = execution.id  # `finish` may roll back, which expires the loaded row
        keys = Keys(settings.redis_prefix)
        writer = await LogWriter.resume(EventLog(redis, keys, key))
        queued = (ExecutionStatus.QUEUED,)
        cancelled_in_queue = await self.finish(key, Outcome(ExecutionStatus.CANCELLED), writer, settings, queued)
        if not cancelled_in_queue:
            await send_control(redis, keys, key, {"op": "cancel"})
        log.info("execution cancel requested", execution_id=str(key), queued=cancelled_in_queue)
        deadline = asyncio.get_running_loop().time() + CANCEL_WAIT_S
        while True:
            await self.repository.session.refresh(execution)
            await self.repository.session.commit()  # end the snapshot so the next refresh sees the worker's change
            if execution.status.terminal or asyncio.get_running_loop().time() > deadline:
                return execution
            await asyncio.sleep(0.05)

    async def send_input(
        self, user: User, execution_id: str, data: str, *, eof: bool, redis: ArqRedis, settings: Settings
    ) -> None:
        """Queue stdin data (and EOF) for the worker running this execution."""
        execution = await self.visible(user, execution_id)
        if len(data.encode()) > settings.max_input_bytes:
            raise BadUserInput(f"data must be at most {settings.max_input_bytes} bytes")
        if execution.status.terminal:
            raise Conflict(f"execution already ended with status {execution.status.value}")
        if not execution.stdin_open:
            raise Conflict("stdin was given at submission and is closed")
        keys = Keys(settings.redis_prefix)
        if data:
            await send_control(redis, keys, execution.id, {"op": "input", "data": data})
        if eof:
            await send_control(redis, keys, execution.id, {"op": "eof"})


async def enqueue(queue: ArqRedis, execution_id: UUID) -> None:
    """Enqueue the job for a stored execution; arq ignores a second enqueue of the same id."""
    await queue.enqueue_job("run_execution", str(execution_id), _job_id=str(execution_id))


async def send_control(redis: ArqRedis, keys: Keys, execution_id: UUID, message: dict[str, str]) -> None:
    """Append a command for the worker holding the run; it reads them in order."""
    key = keys.control(execution_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xadd(key, message)  # type: ignore[arg-type]
        pipe.expire(key, 24 * 3600)
        await pipe.execute()


def encode_cursor(execution: Execution) -> str:
    """An opaque pagination cursor pointing at `execution`."""
    return base64.urlsafe_b64encode(f"execution:{execution.id}".encode()).decode()


def decode_cursor(cursor: str) -> UUID:
    """The execution id a cursor points at; BAD_USER_INPUT for anything else."""
    try:
        kind, _, raw = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        execution_id = UUID(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise BadUserInput("after is not a valid cursor") from error
    if kind != "execution":
        raise BadUserInput("after is not a valid cursor")
    return execution_id


def _check_text(name: str, value: str, max_bytes: int) -> None:
    try:
        size = len(value.encode())
    except UnicodeEncodeError as error:
        raise BadUserInput(f"{name} is not valid Unicode") from error
    if size > max_bytes:
        raise BadUserInput(f"{name} must be at most {max_bytes} bytes")
    if "\x00" in value:
        raise BadUserInput(f"{name} must not contain NUL characters")
