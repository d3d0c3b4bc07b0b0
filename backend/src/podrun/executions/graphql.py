"""GraphQL types and resolvers for executions: submit, read, list, cancel, input, and the live events."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated
from uuid import UUID

import strawberry

from podrun.accounts.graphql import UserType
from podrun.errors import BadUserInput
from podrun.executions.models import Execution, ExecutionStatus
from podrun.executions.service import ExecutionService, Page, SubmitRequest, encode_cursor
from podrun.graphql.context import Info, Services
from podrun.runners import base as runner
from podrun.streams.events import Event, LineEvent, joined_output
from podrun.streams.follow import follow
from podrun.streams.log import EventLog

strawberry.enum(ExecutionStatus, description="QUEUED, STARTING and RUNNING are active; the rest are terminal.")
strawberry.enum(runner.Stream, name="OutputStream")
strawberry.enum(runner.LimitKind, description="The limit that ended a run.")


@strawberry.type
class Limits:
    """Resource limits of a run."""

    wall_time_ms: int
    cpu_time_ms: int
    memory_mi_b: int = strawberry.field(name="memoryMiB")
    output_bytes: int
    processes: int

    @classmethod
    def from_limits(cls, limits: runner.Limits) -> Limits:
        """The GraphQL view of runner limits."""
        return cls(
            wall_time_ms=limits.wall_time_ms,
            cpu_time_ms=limits.cpu_time_ms,
            memory_mi_b=limits.memory_mib,
            output_bytes=limits.output_bytes,
            processes=limits.processes,
        )


@strawberry.input
class LimitsInput:
    """Limits to ask for; each omitted one takes the runtime's default, and none may exceed its maximum."""

    wall_time_ms: int | None = None
    cpu_time_ms: int | None = None
    memory_mi_b: int | None = strawberry.field(name="memoryMiB", default=None)
    output_bytes: int | None = None
    processes: int | None = None

    def requested(self) -> dict[str, int | None]:
        """The requested values by runner field name."""
        return {
            "wall_time_ms": self.wall_time_ms,
            "cpu_time_ms": self.cpu_time_ms,
            "memory_mib": self.memory_mi_b,
            "output_bytes": self.output_bytes,
            "processes": self.processes,
        }


@strawberry.type
class Runtime:
    """A language runtime scripts can run on."""

    id: str
    language: str
    version: str
    default: bool
    max_limits: Limits
    default_limits: Limits
    isolation: str = strawberry.field(
        description="How runs are isolated and their limits enforced (namespaces, cgroups or rlimits, pods)."
    )

    @classmethod
    def from_runtime(cls, runtime: runner.Runtime, isolation: str) -> Runtime:
        """The GraphQL view of a runner runtime."""
        return cls(
            id=runtime.id,
            language=runtime.language,
            version=runtime.version,
            default=runtime.default,
            max_limits=Limits.from_limits(runtime.max_limits),
            default_limits=Limits.from_limits(runtime.default_limits),
            isolation=isolation,
        )


@strawberry.type
class Usage:
    """What a finished run used."""

    wall_time_ms: int | None
    cpu_time_ms: int | None
    peak_memory_ki_b: int | None = strawberry.field(name="peakMemoryKiB")


@strawberry.type(name="Execution")
class ExecutionType:
    """One submitted script and its run."""

    model: strawberry.Private[Execution]
    id: strawberry.ID
    status: ExecutionStatus
    script: str
    stdin: str | None
    exit_code: int | None
    signal: int | None
    limit_exceeded: runner.LimitKind | None
    error: str | None
    output_truncated: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_model(cls, execution: Execution) -> ExecutionType:
        """The GraphQL view of an execution row."""
        return cls(
            model=execution,
            id=strawberry.ID(str(execution.id)),
            status=execution.status,
            script=execution.script,
            stdin=execution.stdin,
            exit_code=execution.exit_code,
            signal=execution.signal,
            limit_exceeded=execution.limit_exceeded,
            error=execution.error,
            output_truncated=execution.output_truncated,
            created_at=execution.created_at,
            started_at=execution.started_at,
            finished_at=execution.finished_at,
        )

    @strawberry.field
    def runtime(self, info: Info) -> Runtime:
        catalog = info.context.services.catalog
        known = catalog.find(self.model.runtime)
        if known is not None:
            return Runtime.from_runtime(known, catalog.isolation)
        # A runtime no longer offered still describes old runs truthfully.
        limits = Limits.from_limits(self.model.limits)
        version = self.model.runtime.rpartition("-")[2]
        return Runtime(
            id=self.model.runtime,
            language="python",
            version=version,
            default=False,
            max_limits=limits,
            default_limits=limits,
            isolation=catalog.isolation,
        )

    @strawberry.field
    def limits(self) -> Limits:
        return Limits.from_limits(self.model.limits)

    @strawberry.field
    def usage(self) -> Usage | None:
        if self.model.usage_wall_time_ms is None and self.model.usage_cpu_time_ms is None:
            return None
        return Usage(
            wall_time_ms=self.model.usage_wall_time_ms,
            cpu_time_ms=self.model.usage_cpu_time_ms,
            peak_memory_ki_b=self.model.usage_peak_memory_kib,
        )

    @strawberry.field
    def owner(self) -> UserType:
        return UserType.from_model(self.model.owner)

    @strawberry.field(description="Everything written to stdout so far (all of it once the run has ended).")
    async def stdout(self, info: Info) -> str:
        return await self._output(info, runner.Stream.STDOUT)

    @strawberry.field(description="Everything written to stderr so far (all of it once the run has ended).")
    async def stderr(self, info: Info) -> str:
        return await self._output(info, runner.Stream.STDERR)

    async def _output(self, info: Info, stream: runner.Stream) -> str:
        if self.model.status.terminal:
            return self.model.stdout if stream is runner.Stream.STDOUT else self.model.stderr
        services = info.context.services
        events = await EventLog(services.redis, services.keys, self.model.id).read_all()
        return joined_output(events, stream)


@strawberry.type
class ExecutionEdge:
    """An execution in a page, with the cursor that points at it."""

    cursor: str
    node: ExecutionType


@strawberry.type
class PageInfo:
    """Whether there is more, and where to continue."""

    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class ExecutionConnection:
    """A page of executions, newest first."""

    edges: list[ExecutionEdge]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page) -> ExecutionConnection:
        """The GraphQL view of a page."""
        edges = [ExecutionEdge(cursor=encode_cursor(e), node=ExecutionType.from_model(e)) for e in page.executions]
        return cls(
            edges=edges,
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=edges[-1].cursor if edges else None),
        )


@strawberry.type
class OutputLine:
    """A line of output, without its newline. `partial` lines did not end with a newline yet."""

    seq: int
    stream: runner.Stream
    text: str
    at: datetime
    partial: bool = strawberry.field(
        description="True when the text did not end with a newline: the next line of the stream continues it."
    )


@strawberry.type
class OutputChunk:
    """One or more consecutive lines, in seq order."""

    lines: list[OutputLine]


@strawberry.type
class StatusChange:
    """The run moved to `status`; `execution` is its state when the event is delivered."""

    seq: int
    status: ExecutionStatus
    execution: ExecutionType


ExecutionEvent = Annotated[OutputChunk | StatusChange, strawberry.union("ExecutionEvent")]


@strawberry.input
class SubmitExecutionInput:
    """A script to run."""

    script: str
    runtime: str | None = strawberry.field(default=None, description="A runtime id; null for the default.")
    stdin: str | None = strawberry.field(
        default=None,
        description="Given: fed to the script, then EOF. Omitted: stdin stays open for sendInput.",
    )
    limits: LimitsInput | None = None
    idempotency_key: str | None = strawberry.field(
        default=None, description="Resubmitting with the same key returns the first execution instead of a new one."
    )


@strawberry.type
class ExecutionQuery:
    """Reading runtimes and executions."""

    @strawberry.field(description="The runtimes on offer, with their default and maximum limits.")
    def runtimes(self, info: Info) -> list[Runtime]:
        catalog = info.context.services.catalog
        return [Runtime.from_runtime(runtime, catalog.isolation) for runtime in catalog.runtimes]

    @strawberry.field(description="One execution, if it is yours (or you are an admin).")
    async def execution(self, info: Info, id: strawberry.ID) -> ExecutionType | None:
        user = await info.context.require_user()
        async with ExecutionService.new(config=info.context.services.db) as executions:
            return ExecutionType.from_model(await executions.visible(user, id))

    @strawberry.field(description="Your executions (everyone's for an admin), newest first.")
    async def executions(
        self, info: Info, first: int | None = 20, after: str | None = None, status: ExecutionStatus | None = None
    ) -> ExecutionConnection:
        user = await info.context.require_user()
        async with ExecutionService.new(config=info.context.services.db) as executions:
            return ExecutionConnection.from_page(
                await executions.page(user, 20 if first is None else first, after, status)
            )


@strawberry.type
class ExecutionMutation:
    """Submitting and controlling runs."""

    @strawberry.mutation(description="Queue a script to run; watch it with executionEvents.")
    async def submit_execution(self, info: Info, input: SubmitExecutionInput) -> ExecutionType:
        user = await info.context.require_user()
        services = info.context.services
        request = SubmitRequest(
            script=input.script,
            runtime=input.runtime,
            stdin=input.stdin,
            limits=input.limits.requested() if input.limits else {},
            idempotency_key=input.idempotency_key,
        )
        async with ExecutionService.new(config=services.db) as executions:
            execution = await executions.submit(user, request, services.catalog, services.settings, services.redis)
        return ExecutionType.from_model(execution)

    @strawberry.mutation(description="Stop a run: at once if queued, within a second if running.")
    async def cancel_execution(self, info: Info, id: strawberry.ID) -> ExecutionType:
        user = await info.context.require_user()
        services = info.context.services
        async with ExecutionService.new(config=services.db) as executions:
            return ExecutionType.from_model(await executions.cancel(user, id, services.redis, services.settings))

    @strawberry.mutation(description="Write to a running script's stdin; eof closes it.")
    async def send_input(self, info: Info, id: strawberry.ID, data: str, eof: bool | None = False) -> bool:
        user = await info.context.require_user()
        services = info.context.services
        async with ExecutionService.new(config=services.db) as executions:
            await executions.send_input(user, id, data, eof=bool(eof), redis=services.redis, settings=services.settings)
        return True


@strawberry.type
class ExecutionSubscription:
    """Live output."""

    @strawberry.subscription(
        description="Every event after afterSeq, then live ones, ending with the terminal StatusChange."
    )
    async def execution_events(
        self, info: Info, id: strawberry.ID, after_seq: int | None = 0
    ) -> AsyncGenerator[ExecutionEvent, None]:
        user = await info.context.require_user()
        services = info.context.services
        after_seq = after_seq or 0
        if after_seq < 0:
            raise BadUserInput("afterSeq must not be negative")
        async with ExecutionService.new(config=services.db) as executions:
            execution_id = (await executions.visible(user, id)).id

        async def load_archive() -> list[Event] | None:
            async with ExecutionService.new(config=services.db) as executions:
                return await executions.archived_events(execution_id)

        log = EventLog(services.redis, services.keys, execution_id)
        async for batch in follow(services.hub, log, after_seq, load_archive):
            lines: list[OutputLine] = []
            for event in batch:
                if isinstance(event, LineEvent):
                    lines.append(
                        OutputLine(
                            seq=event.seq, stream=event.stream, text=event.text, at=event.at, partial=event.partial
                        )
                    )
                    continue
                if lines:
                    yield OutputChunk(lines=lines)
                    lines = []
                yield StatusChange(seq=event.seq, status=event.status, execution=await _load(services, execution_id))
            if lines:
                yield OutputChunk(lines=lines)


async def _load(services: Services, execution_id: UUID) -> ExecutionType:
    async with ExecutionService.new(config=services.db) as executions:
        return ExecutionType.from_model(await executions.get(execution_id))
