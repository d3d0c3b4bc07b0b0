"""The rules of executions: submitting, reading, cancelling, input, and how a run ends."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NoReturn
from uuid import UUID

import structlog
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from uuid_utils.compat import uuid7

from podrun import ratelimit
from podrun.accounts.models import Role, User
from podrun.core import pages
from podrun.core.errors import BadUserInput, Conflict, Forbidden, NotFound, RateLimited
from podrun.core.output import Stream
from podrun.core.pages import check_first, decode_cursor
from podrun.core.statuses import ACTIVE, ExecutionStatus
from podrun.core.text import check_text
from podrun.executions import ending
from podrun.executions.artifacts import ArtifactRepository
from podrun.executions.models import Artifact, Execution
from podrun.executions.outcomes import Outcome
from podrun.executions.queue import RunQueue
from podrun.executions.repository import ExecutionRepository
from podrun.fair_queue import QueuedRun
from podrun.observability import metrics
from podrun.policy.store import PolicyStore
from podrun.policy.values import RolePolicy
from podrun.quotas import QuotaUsage, Refusal, SubmitQuota
from podrun.redis_client import Keys
from podrun.runners import protocol
from podrun.runners.base import InputFile
from podrun.runners.catalog import RuntimeCatalog, resolve_limits
from podrun.scripts.service import ScriptService
from podrun.settings import Settings
from podrun.streams.control import Cancel, ControlStream, Eof
from podrun.streams.events import Entry, from_json, is_terminal, joined_output
from podrun.streams.log import EventLog, LogWriter

log = structlog.get_logger(__name__)

CURSOR_KIND = "execution"
ACTIVE_RETRY_MS = 1000
# cancelExecution waits this long for a started run to stop, so it can answer with CANCELLED.
CANCEL_WAIT_S = 2.0
# A second interrupt of a kernel's cell within this long is refused (the first one is still under way).
INTERRUPT_PENDING_S = 10
# deleteExecution waits this long for a started run to stop (a worker stops one within a second; a run whose
# worker died is ended by the watchdog after the heartbeat TTL): past it the delete is refused, nothing deleted.
DELETE_WAIT_S = 5.0
# Between the commit of a run's end and the terminal event in its Redis log, the run's holder still writes the
# log: a delete waits this long for that event, so no key is written again after it is deleted.
TERMINAL_EVENT_WAIT_S = 2.0
MIB = 1024 * 1024
# When a client may try again after the input window of a run was full: the script decides when it reads.
INPUT_FULL_RETRY_MS = 1000


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
    # A tool's run: the version it runs, and the inputs its form made of the values (already checked:
    # "inputs.json" and "inputs/<name>"), placed beside `files`.
    tool_version_id: UUID | None = None
    tool_inputs: Sequence[InputFile] = ()


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
    storage_bytes: int


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
        self.queue = RunQueue(redis, keys)
        self.quotas = self.queue.quotas

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
        files, files_bytes = _check_files(request.files, caps.files_count, caps.files_bytes)
        files += request.tool_inputs
        # A tool's inputs were checked against its form (tools/form.py); they are stored, so they count too.
        files_bytes += sum(len(file.content) for file in request.tool_inputs)
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
            tool_version_id=request.tool_version_id,
            status=ExecutionStatus.QUEUED,
            stored_bytes=len(script.encode()) + len((request.stdin or "").encode()) + files_bytes,
        )
        quota = SubmitQuota(role.submissions_per_minute, role.active_executions, system.queued_executions_cap)
        await self._take_slot(owner, execution.id, quota)
        try:
            # The row and its bytes counted against the owner's storage, in one statement: a refusal writes nothing.
            stored = await self.repository.insert_reserving(execution, role.storage_bytes)
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
        if not stored:
            await self.quotas.give_back(str(owner.id), str(execution.id))
            await storage_full(self.repository, owner, role)
        try:
            await self.queue.enqueue(QueuedRun(execution.id, owner.id, limits.memory_mib, execution.created_at))
        except RedisError as exc:
            # The row is the record: the workers' sweep enqueues QUEUED runs whose job is missing.
            log.warning("execution stored, enqueue deferred", execution_id=str(execution.id), error=type(exc).__name__)
        log.info("execution submitted", execution_id=str(execution.id), runtime=runtime.id)
        metrics.EXECUTIONS_SUBMITTED.labels(runtime=runtime.id).inc()
        set_committed_value(execution, "owner", owner)
        return execution

    async def quota(self, user: User) -> QuotaView:
        """What `user` holds of each quota now, and the limits of their role."""
        system = await self.policy.current()
        return QuotaView(
            usage=await self.quotas.usage(str(user.id)),
            role=system.for_role(user.role),
            queued_executions_cap=system.queued_executions_cap,
            storage_bytes=await self.repository.storage_held(user.id),
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

    async def visible_status(self, user: User, execution_id: str) -> tuple[UUID, ExecutionStatus]:
        """The id and status of a run `user` may see, as `visible` decides, without loading the run."""
        try:
            key = UUID(execution_id)
        except ValueError as error:
            raise NotFound("execution not found") from error
        found = await self.repository.owner_and_status(key)
        if found is None or (found[0] != user.id and user.role is not Role.ADMIN):
            raise NotFound("execution not found")
        return key, found[1]

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

    def event_log(self, execution_id: UUID) -> EventLog:
        """The Redis event log of one execution."""
        return EventLog(self.redis, self.keys, execution_id)

    async def live_output(self, execution_id: UUID) -> dict[Stream, str] | None:
        """Everything a run still going has written so far, per stream, read from its log at once; None if the
        run has ended meanwhile (its log may be incomplete: read the archive instead)."""
        events = await self.event_log(execution_id).read_all()
        if events and is_terminal(events[-1]):
            return None
        return {stream: joined_output(events, stream) for stream in Stream}

    async def input_files(self, execution_ids: Sequence[UUID]) -> dict[UUID, list[InputFile]]:
        """The files each of these runs was given, in the order they were given."""
        return await self.repository.input_files_of(execution_ids)

    async def finish(
        self,
        execution_id: UUID,
        outcome: Outcome,
        writer: LogWriter,
        from_statuses: Collection[ExecutionStatus] = ACTIVE,
    ) -> bool:
        """End a run (executions/ending.py); False, and nothing changed, if it was not in `from_statuses`, so
        whoever finishes a run first wins and nobody finishes it twice."""
        return await ending.finish(
            self.repository,
            self.queue,
            writer,
            execution_id,
            outcome,
            log_retention_s=self.settings.log_retention_s,
            from_statuses=from_statuses,
        )

    async def archived_events(self, execution_id: UUID) -> list[Entry] | None:
        """The archived log of a finished run (its entries: batches of lines, statuses, artifacts); None while it
        has not finished."""
        archive = await self.repository.archived_events(execution_id)
        return None if archive is None else [from_json(item) for item in archive]

    async def cancel(self, user: User, execution_id: str) -> Execution:
        """Cancel a run: a QUEUED one here and now, a started one by telling its worker."""
        execution = await self.visible(user, execution_id)
        if execution.status.terminal:
            if execution.status is ExecutionStatus.CANCELLED:
                return execution
            raise Conflict(f"execution already ended with status {execution.status.value}")
        if execution.kernel_id is not None and execution.status is not ExecutionStatus.QUEUED:
            await self._interrupt_once(execution.id)
        await self._request_cancel(execution.id)
        return await self._until_ended(execution, CANCEL_WAIT_S)

    async def _interrupt_once(self, execution_id: UUID) -> None:
        """A kernel's running cell is interrupted once: CONFLICT while an interrupt of it is under way."""
        if not await self.redis.set(self.keys.interrupt(execution_id), "1", nx=True, ex=INTERRUPT_PENDING_S):
            raise Conflict("this cell is already being interrupted")

    async def _request_cancel(self, execution_id: UUID) -> None:
        """End a QUEUED run here and now, or tell the worker holding a started one to stop it.

        `finish` may roll back, which expires rows loaded in this session (refresh them after).
        """
        writer = await LogWriter.resume(self.event_log(execution_id))
        queued = (ExecutionStatus.QUEUED,)
        cancelled_in_queue = await self.finish(execution_id, Outcome(ExecutionStatus.CANCELLED), writer, queued)
        if not cancelled_in_queue:
            await ControlStream(self.redis, self.keys, execution_id).send(Cancel())
        log.info("execution cancel requested", execution_id=str(execution_id), queued=cancelled_in_queue)

    async def _until_ended(self, execution: Execution, timeout_s: float) -> Execution:
        """The run as it is once it has ended, or after `timeout_s` if it has not."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            await self.repository.session.refresh(execution)
            await self.repository.session.commit()  # end the snapshot so the next refresh sees the worker's change
            if execution.status.terminal or asyncio.get_running_loop().time() > deadline:
                return execution
            await asyncio.sleep(0.05)

    async def delete_run(self, user: User, execution_id: str) -> UUID:
        """Delete a run with its output, archived log, artifacts and Redis keys (cancelling it first if it is
        still going); its id. NOT_FOUND if `user` may not see it, CONFLICT if it did not stop in time."""
        execution = await self.visible(user, execution_id)
        key = execution.id
        if not execution.status.terminal:
            await self._request_cancel(key)
            execution = await self._until_ended(execution, DELETE_WAIT_S)
            if not execution.status.terminal:
                raise Conflict("the run is still stopping; delete it again in a few seconds")
        await self._until_terminal_event(key)
        deleted = await self.repository.delete_ended(key)
        if deleted is None:
            raise NotFound("execution not found")  # deleted meanwhile by another request or the retention sweep
        await self._forget_redis([deleted.execution_id])
        await self.queue.release(deleted.owner_id, key)
        log.info("execution deleted", execution_id=str(key), freed_bytes=deleted.stored_bytes)
        return key

    async def _until_terminal_event(self, execution_id: UUID) -> None:
        """Wait until an ended run's holder has appended the terminal event (the last it writes to Redis)."""
        event_log = self.event_log(execution_id)
        deadline = asyncio.get_running_loop().time() + TERMINAL_EVENT_WAIT_S
        while asyncio.get_running_loop().time() < deadline:
            newest = await event_log.newest()
            if newest is None or is_terminal(newest):
                return
            await asyncio.sleep(0.02)
        log.warning("terminal event missing; deleting the run's log anyway", execution_id=str(execution_id))

    async def delete_expired(self, role: Role, finished_before: datetime, batch: int) -> int:
        """Delete up to `batch` of `role`'s users' runs that finished before `finished_before` (one transaction),
        then their Redis keys; how many were deleted."""
        deleted = await self.repository.delete_expired(role, finished_before, batch)
        await self._forget_redis([run.execution_id for run in deleted])
        return len(deleted)

    async def _forget_redis(self, execution_ids: Sequence[UUID]) -> None:
        """Delete the Redis keys of deleted runs (their event logs, control streams and input windows)."""
        keys = [key for execution_id in execution_ids for key in self._redis_keys(execution_id)]
        if not keys:
            return
        try:
            await self.redis.delete(*keys)
        except RedisError as exc:
            # Each kind of key expires on its own (a day at most).
            log.warning("redis keys of deleted runs left to expire", count=len(keys), error=type(exc).__name__)

    def _redis_keys(self, execution_id: UUID) -> tuple[str, str, str]:
        return self.keys.events(execution_id), self.keys.control(execution_id), self.keys.input_window(execution_id)

    async def send_input(self, user: User, execution_id: str, data: str, *, eof: bool) -> None:
        """Queue stdin data (and EOF) for the worker running this execution."""
        execution = await self.visible(user, execution_id)
        if len(data.encode()) > self.settings.limits.input_bytes:
            raise BadUserInput(f"data must be at most {self.settings.limits.input_bytes} bytes")
        if execution.status.terminal:
            raise Conflict(f"execution already ended with status {execution.status.value}")
        if not execution.stdin_open:
            raise Conflict("stdin was given at submission and is closed")
        await ratelimit.hit(
            self.redis, self.keys.rate("input", str(user.id)), self.settings.quotas.input_calls_per_minute, 60, "inputs"
        )
        control = ControlStream(self.redis, self.keys, execution.id)
        cap = self.settings.limits.pending_input_bytes
        if data and not await control.add_input(data, cap):
            raise RateLimited(
                f"this run has {cap} bytes of input it has not read yet; send more once it has",
                retry_after_ms=INPUT_FULL_RETRY_MS,
            )
        if eof:
            await control.send(Eof())


async def storage_full(rows: ExecutionRepository, owner: User, role: RolePolicy) -> NoReturn:
    """Refuse a submission (or a kernel cell) past its owner's storage: BAD_USER_INPUT (STORAGE_FULL)."""
    held = await rows.storage_held(owner.id)
    await rows.session.rollback()
    raise BadUserInput(
        f"your runs hold {held / MIB:.1f} MiB of your {role.storage_mib} MiB of storage; "
        "delete runs (deleteExecution) to submit more",
        reason="STORAGE_FULL",
    )


def encode_cursor(execution: Execution) -> str:
    """An opaque pagination cursor pointing at `execution`."""
    return pages.encode_cursor(CURSOR_KIND, execution.id)


def _check_files(files: Sequence[tuple[str, str]], max_count: int, max_bytes: int) -> tuple[list[InputFile], int]:
    """Input files given as (name, base64 content), decoded, and their bytes in all: plain, distinct names and
    valid base64 content, within the count and size caps."""
    if len(files) > max_count:
        raise BadUserInput(f"at most {max_count} files may be given")
    total = 0
    seen: set[str] = set()
    decoded: list[InputFile] = []
    for name, content in files:
        if not protocol.is_file_name(name):
            raise BadUserInput(
                "a file name must be 1 to 100 letters, digits, '.', '_' or '-', start with a letter or digit, "
                "and not be main.py or outputs"
            )
        if name in seen:
            raise BadUserInput(f"the file name {name} is given twice")
        seen.add(name)
        try:
            decoded.append(InputFile(name, base64.b64decode(content, validate=True)))
        except (binascii.Error, ValueError) as error:
            raise BadUserInput(f"the content of {name} is not base64") from error
        total += len(decoded[-1].content)
        if total > max_bytes:
            raise BadUserInput(f"the files must be at most {max_bytes} bytes in all")
    return decoded, total
