"""The rules of executions: submitting, reading, cancelling, input, and how a run ends."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import structlog
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from uuid_utils.compat import uuid7

from podrun.accounts.models import Role, User
from podrun.core import pages
from podrun.core.errors import BadUserInput, Conflict, Forbidden, NotFound, RateLimited
from podrun.core.output import Stream
from podrun.core.pages import check_first, decode_cursor
from podrun.core.statuses import ACTIVE, ExecutionStatus
from podrun.core.text import check_text
from podrun.executions.artifacts import ArtifactRepository
from podrun.executions.models import Artifact, Execution
from podrun.executions.outcomes import Outcome
from podrun.executions.repository import ExecutionRepository
from podrun.policy.store import PolicyStore
from podrun.policy.values import RolePolicy
from podrun.quotas import QuotaUsage, Refusal, SubmitQuota, SubmitQuotas
from podrun.redis_client import Keys
from podrun.runners import harness
from podrun.runners.catalog import RuntimeCatalog, resolve_limits
from podrun.scripts.service import ScriptService
from podrun.settings import Settings
from podrun.streams.events import Event, from_json, is_terminal, joined_output, to_json
from podrun.streams.log import EventLog, LogWriter

log = structlog.get_logger(__name__)

CURSOR_KIND = "execution"
ACTIVE_RETRY_MS = 1000
# cancelExecution waits this long for a started run to stop, so it can answer with CANCELLED.
CANCEL_WAIT_S = 2.0
CONTROL_TTL_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """What a client asked to run; `limits` by field name, each None taking the runtime's default."""

    script: str | None
    runtime: str | None = None
    stdin: str | None = None
    limits: Mapping[str, int | None] = field(default_factory=dict)
    idempotency_key: str | None = None
    # (name, base64 content) of the files to place beside the script.
    files: Sequence[tuple[str, str]] = ()
    # A saved script to run instead of `script` (exactly one of the two is given).
    script_id: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of executions, newest first."""

    executions: list[Execution]
    has_next_page: bool


@dataclass(frozen=True, slots=True)
class QuotaView:
    """A user's quotas: what they hold now and the policy of their role."""

    usage: QuotaUsage
    role: RolePolicy
    queued_executions_cap: int


class ExecutionService(SQLAlchemyAsyncRepositoryService[Execution, ExecutionRepository]):
    """Executions and their state changes. Every change that ends a run goes through `finish`.

    Made per unit of work by the container, with the process's settings, Redis and runtime catalog.
    """

    repository_type = ExecutionRepository

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
        self.artifacts = ArtifactRepository(session=session)
        self.settings = settings
        self.redis = redis
        self.keys = keys
        self.catalog = catalog
        self.policy = policy
        self.quotas = SubmitQuotas(redis, keys)

    async def submit(self, owner: User, request: SubmitRequest) -> Execution:
        """Validate, store as QUEUED, commit, then enqueue. A repeated idempotency key returns the first run."""
        caps = self.settings.limits
        script, runtime_id = await self._script_and_runtime(owner, request)
        check_text("script", script, caps.script_bytes)
        if request.stdin is not None:
            check_text("stdin", request.stdin, caps.stdin_bytes)
        if request.idempotency_key is not None:
            check_text("idempotencyKey", request.idempotency_key, 255)
            if existing := await self._by_idempotency_key(owner, script, request):
                return existing
        files = _check_files(request.files, caps.files_count, caps.files_bytes)
        system = await self.policy.current()
        role = system.for_role(owner.role)
        runtime = self.catalog.get(runtime_id)
        limits = resolve_limits(runtime, request.limits, default=role.default_limits, maximum=role.max_limits)
        execution = Execution(
            id=uuid7(),
            owner_id=owner.id,
            runtime=runtime.id,
            script=script,
            stdin=request.stdin,
            idempotency_key=request.idempotency_key,
            limits=limits,
            files=files or None,
            status=ExecutionStatus.QUEUED,
        )
        quota = SubmitQuota(role.submissions_per_minute, role.active_executions, system.queued_executions_cap)
        await self._take_slot(owner, execution.id, quota)
        try:
            # Every column has its value in Python already: no read back after the insert.
            execution = await self.create(execution, auto_commit=True, auto_refresh=False)
        except BaseException as error:
            await self.quotas.release(str(owner.id), str(execution.id))
            if not isinstance(error, IntegrityError):
                raise
            await self.repository.session.rollback()
            if request.idempotency_key is not None and (
                existing := await self._by_idempotency_key(owner, script, request)
            ):
                return existing
            raise
        try:
            await self.enqueue(execution.id)
        except RedisError as exc:
            # The row is the record: the workers' sweep enqueues QUEUED runs whose job is missing.
            log.warning("execution stored, enqueue deferred", execution_id=str(execution.id), error=type(exc).__name__)
        log.info("execution submitted", execution_id=str(execution.id), runtime=runtime.id)
        set_committed_value(execution, "owner", owner)
        return execution

    async def quota(self, user: User) -> QuotaView:
        """What `user` holds of each quota now, and the limits of their role."""
        system = await self.policy.current()
        return QuotaView(
            usage=await self.quotas.usage(str(user.id)),
            role=system.for_role(user.role),
            queued_executions_cap=system.queued_executions_cap,
        )

    async def _script_and_runtime(self, owner: User, request: SubmitRequest) -> tuple[str, str | None]:
        """The text to run and the runtime asked for: given in the request, or those of a saved script."""
        if (request.script is None) == (request.script_id is None):
            raise BadUserInput("give either script or scriptId")
        if request.script is not None:
            return request.script, request.runtime
        scripts = ScriptService(session=self.repository.session, settings=self.settings, catalog=self.catalog)
        saved = await scripts.owned(owner, request.script_id or "")
        return saved.script, request.runtime or saved.runtime

    async def _take_slot(self, owner: User, execution_id: UUID, quota: SubmitQuota) -> None:
        """Take the run's quota slots; RATE_LIMITED if any quota is used up."""
        user_id = str(owner.id)
        refusal = await self.quotas.take_or_refuse(user_id, str(execution_id), quota)
        if refusal is Refusal.ACTIVE and await self._forget_ended(user_id):
            refusal = await self.quotas.take_or_refuse(user_id, str(execution_id), quota)
        if refusal is Refusal.ACTIVE:
            raise RateLimited(
                f"you have {quota.active_executions} runs in progress; wait for one to finish",
                retry_after_ms=ACTIVE_RETRY_MS,
            )

    async def _forget_ended(self, user_id: str) -> bool:
        """Free the slots of runs that ended while their release was lost (Redis was away); whether any were."""
        held = await self.quotas.held_active(user_id)
        ended = [str(key) for key in await self.repository.ended_among([UUID(member) for member in held])]
        await self.quotas.forget(user_id, ended)
        return bool(ended)

    async def _by_idempotency_key(self, owner: User, script: str, request: SubmitRequest) -> Execution | None:
        existing = await self.get_one_or_none(owner_id=owner.id, idempotency_key=request.idempotency_key)
        if existing is not None and (existing.script != script or existing.stdin != request.stdin):
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

    async def page(
        self, user: User, first: int, after: str | None, status: ExecutionStatus | None, owner_id: str | None = None
    ) -> Page:
        """Executions `user` may see (of `owner_id` only, if given), newest first, after the cursor `after`.

        A user may name only themselves as owner (FORBIDDEN otherwise); an admin anyone.
        """
        check_first(first)
        before = decode_cursor(after, CURSOR_KIND) if after is not None else None
        owner = None
        if owner_id is not None:
            try:
                owner = UUID(owner_id)
            except ValueError as error:
                raise BadUserInput("userId is not a valid id") from error
            if owner != user.id and user.role is not Role.ADMIN:
                raise Forbidden("only admins may list another user's executions")
        rows = await self.repository.page(user, first + 1, before, status, owner)
        return Page(executions=rows[:first], has_next_page=len(rows) > first)

    async def artifact_for_download(self, user: User, artifact_id: UUID) -> Artifact:
        """An artifact with its content, if `user` owns its run or is an admin; NOT_FOUND otherwise."""
        found = await self.artifacts.with_content(artifact_id)
        if found is None or (found[1] != user.id and user.role is not Role.ADMIN):
            raise NotFound("artifact not found")
        return found[0]

    async def left_queue(self, execution_id: UUID) -> None:
        """A worker claimed the run: free its slot of the queue cap (a lost release lapses or is reclaimed)."""
        try:
            await self.quotas.left_queue(str(execution_id))
        except RedisError as exc:
            log.warning("queue slot not released", execution_id=str(execution_id), error=type(exc).__name__)

    async def _release(self, owner_id: UUID, execution_id: UUID) -> None:
        try:
            await self.quotas.release(str(owner_id), str(execution_id))
        except RedisError as exc:
            # The next refusal of this user's submissions finds the ended run and frees its slot.
            log.warning("quota slots not released", execution_id=str(execution_id), error=type(exc).__name__)

    def event_log(self, execution_id: UUID) -> EventLog:
        """The Redis event log of one execution."""
        return EventLog(self.redis, self.keys, execution_id)

    async def input_files(self, execution: Execution) -> list[tuple[str, str]]:
        """The (name, base64 content) of the files a run was given, in the order they were given."""
        return [(file["name"], file["content"]) for file in await self.repository.input_files(execution.id)]

    async def output(self, execution: Execution, stream: Stream) -> str:
        """Everything written to `stream` so far: from the row once the run has ended, else from its log."""
        if execution.status.terminal:
            return execution.stdout if stream is Stream.STDOUT else execution.stderr
        return joined_output(await self.event_log(execution.id).read_all(), stream)

    async def finish(
        self,
        execution_id: UUID,
        outcome: Outcome,
        writer: LogWriter,
        from_statuses: Collection[ExecutionStatus] = ACTIVE,
    ) -> bool:
        """End a run: archive its log and outcome in one transaction, then append the terminal event.

        Returns False (and changes nothing) if the run was not in `from_statuses`, so whoever
        finishes a run first wins and nobody finishes it twice.
        """
        events = list(writer.events)
        if events and is_terminal(events[-1]):
            return False
        terminal = writer.status_event(outcome.status)
        owner_id = await self.repository.finish(
            execution_id,
            outcome,
            finished_at=terminal.at,
            stdout=joined_output(events, Stream.STDOUT),
            stderr=joined_output(events, Stream.STDERR),
            events=[to_json(event) for event in [*events, terminal]],
            from_statuses=from_statuses,
        )
        if owner_id is None:
            return False
        await self._release(owner_id, execution_id)
        await writer.status(terminal)
        await writer.expire(self.settings.log_retention_s)
        log.info("execution finished", execution_id=str(execution_id), status=outcome.status.value)
        return True

    async def archived_events(self, execution_id: UUID) -> list[Event] | None:
        """The archived log of a finished run; None while it has not finished."""
        archive = await self.repository.archived_events(execution_id)
        return None if archive is None else [from_json(item) for item in archive]

    async def cancel(self, user: User, execution_id: str) -> Execution:
        """Cancel a run: a QUEUED one here and now, a started one by telling its worker."""
        execution = await self.visible(user, execution_id)
        if execution.status.terminal:
            if execution.status is ExecutionStatus.CANCELLED:
                return execution
            raise Conflict(f"execution already ended with status {execution.status.value}")
        key = execution.id  # `finish` may roll back, which expires the loaded row
        writer = await LogWriter.resume(self.event_log(key))
        queued = (ExecutionStatus.QUEUED,)
        cancelled_in_queue = await self.finish(key, Outcome(ExecutionStatus.CANCELLED), writer, queued)
        if not cancelled_in_queue:
            await self.send_control(key, {"op": "cancel"})
        log.info("execution cancel requested", execution_id=str(key), queued=cancelled_in_queue)
        deadline = asyncio.get_running_loop().time() + CANCEL_WAIT_S
        while True:
            await self.repository.session.refresh(execution)
            await self.repository.session.commit()  # end the snapshot so the next refresh sees the worker's change
            if execution.status.terminal or asyncio.get_running_loop().time() > deadline:
                return execution
            await asyncio.sleep(0.05)

    async def send_input(self, user: User, execution_id: str, data: str, *, eof: bool) -> None:
        """Queue stdin data (and EOF) for the worker running this execution."""
        execution = await self.visible(user, execution_id)
        if len(data.encode()) > self.settings.limits.input_bytes:
            raise BadUserInput(f"data must be at most {self.settings.limits.input_bytes} bytes")
        if execution.status.terminal:
            raise Conflict(f"execution already ended with status {execution.status.value}")
        if not execution.stdin_open:
            raise Conflict("stdin was given at submission and is closed")
        if data:
            await self.send_control(execution.id, {"op": "input", "data": data})
        if eof:
            await self.send_control(execution.id, {"op": "eof"})

    async def enqueue(self, execution_id: UUID) -> None:
        """Enqueue the job for a stored execution; arq ignores a second enqueue of the same id."""
        await self.redis.enqueue_job("run_execution", str(execution_id), _job_id=str(execution_id))
        await self.wake_workers()

    async def wake_workers(self) -> None:
        """Tell idle workers a job is waiting (they poll as well: a wake that is lost only delays the pickup)."""
        await self.redis.publish(self.keys.queue_wake, "")

    async def send_control(self, execution_id: UUID, message: dict[str, str]) -> None:
        """Append a command for the worker holding the run; it reads them in order."""
        key = self.keys.control(execution_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(key, message)  # type: ignore[arg-type]
            pipe.expire(key, CONTROL_TTL_S)
            await pipe.execute()


def now() -> datetime:
    """The current time, as rows record it."""
    return datetime.now(UTC)


def encode_cursor(execution: Execution) -> str:
    """An opaque pagination cursor pointing at `execution`."""
    return pages.encode_cursor(CURSOR_KIND, execution.id)


def _check_files(files: Sequence[tuple[str, str]], max_count: int, max_bytes: int) -> list[dict[str, str]]:
    """Input files as stored: plain, distinct names and valid base64 content, within the count and size caps."""
    if len(files) > max_count:
        raise BadUserInput(f"at most {max_count} files may be given")
    total = 0
    seen: set[str] = set()
    for name, content in files:
        if not harness.is_file_name(name):
            raise BadUserInput(
                "a file name must be 1 to 100 letters, digits, '.', '_' or '-', start with a letter or digit, "
                "and not be main.py or outputs"
            )
        if name in seen:
            raise BadUserInput(f"the file name {name} is given twice")
        seen.add(name)
        try:
            total += len(base64.b64decode(content, validate=True))
        except (binascii.Error, ValueError) as error:
            raise BadUserInput(f"the content of {name} is not base64") from error
        if total > max_bytes:
            raise BadUserInput(f"the files must be at most {max_bytes} bytes in all")
    return [{"name": name, "content": content} for name, content in files]
