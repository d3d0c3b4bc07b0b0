"""GraphQL types and resolvers for executions: submit, read, list, cancel, input, and the live events."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncGenerator, Generator, Iterator
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, cast
from uuid import UUID

import strawberry
from strawberry.permission import BasePermission
from strawberry.types.nodes import SelectedField, Selection

from podrun.container import Container
from podrun.core.errors import BadUserInput
from podrun.core.limits import LimitKind, Limits
from podrun.core.output import Stream
from podrun.core.statuses import ExecutionStatus
from podrun.executions.models import Artifact as ArtifactModel
from podrun.executions.models import Execution
from podrun.executions.service import Page, SubmitRequest, encode_cursor
from podrun.graphql import output_budget
from podrun.graphql.accounts import UserType
from podrun.graphql.artifact_urls import artifact_url
from podrun.graphql.connections import PageInfo
from podrun.graphql.context import Info
from podrun.graphql.limits import LimitsInput, LimitsType
from podrun.graphql.permissions import IsAuthenticated
from podrun.runners import scientific
from podrun.runners.base import RuntimeSpec
from podrun.runners.catalog import role_limits
from podrun.streams.events import ArtifactEvent, Entry, Event, LineEvent, StatusEvent
from podrun.streams.follow import follow
from podrun.streams.log import EventLog

if TYPE_CHECKING:
    from podrun.graphql.tools import ToolVersionType

strawberry.enum(ExecutionStatus, description="QUEUED, STARTING and RUNNING are active; the rest are terminal.")
strawberry.enum(Stream, name="OutputStream")
strawberry.enum(LimitKind, description="The limit that ended a run.")

SIGNED_IN: list[type[BasePermission]] = [IsAuthenticated]
# One OutputChunk's lines as JSON stay below this, so a message stays under 256 KiB (clients with a
# 1 MiB limit never break); a single line is at most 192 KiB of JSON (streams/lines.py).
MAX_CHUNK_BYTES = 240 * 1024
OUTPUT_DESCRIPTION = (
    "Everything written to {stream} so far (all of it once the run has ended). Counts against the request's "
    "output budget: past it, BAD_USER_INPUT with reason OUTPUT_BUDGET (page with a smaller `first`, or stream "
    "the output with executionEvents)."
)


@strawberry.type
class Package:
    """A package installed in a runtime, beside the standard library."""

    name: str
    version: str


@strawberry.type(name="Runtime")
class RuntimeType:
    """A language runtime scripts can run on."""

    id: str
    language: str
    version: str
    default: bool
    max_limits: LimitsType
    default_limits: LimitsType
    isolation: str = strawberry.field(
        description="How runs are isolated and their limits enforced (namespaces, cgroups or rlimits, pods)."
    )
    packages: list[Package] = strawberry.field(
        default_factory=list,
        description="The packages installed beside the standard library (none for a plain runtime), by name.",
    )

    @classmethod
    def from_spec(
        cls, runtime: RuntimeSpec, isolation: str, limits: tuple[Limits, Limits] | None = None
    ) -> RuntimeType:
        """The GraphQL view of a runner's runtime; `limits` (default, maximum) in place of its own if given."""
        default, maximum = limits or (runtime.default_limits, runtime.max_limits)
        return cls(
            id=runtime.id,
            language=runtime.language,
            version=runtime.version,
            default=runtime.default,
            max_limits=LimitsType.from_pydantic(maximum),
            default_limits=LimitsType.from_pydantic(default),
            isolation=isolation,
            packages=[Package(name=name, version=version) for name, version in runtime.packages],
        )


def runtime_view(info: Info, runtime_id: str, limits: Limits) -> RuntimeType:
    """The runtime with this id; one no longer offered is still described truthfully, with `limits` as its own."""
    catalog = info.context.container.catalog
    known = catalog.find(runtime_id)
    if known is not None:
        return RuntimeType.from_spec(known, catalog.isolation)
    view = LimitsType.from_pydantic(limits)
    return RuntimeType(
        id=runtime_id,
        language="python",
        version=runtime_id.removesuffix(scientific.RUNTIME_SUFFIX).rpartition("-")[2],
        default=False,
        max_limits=view,
        default_limits=view,
        isolation=catalog.isolation,
    )


@strawberry.type(name="Usage")
class UsageType:
    """What a finished run used."""

    wall_time_ms: int | None
    cpu_time_ms: int | None
    peak_memory_ki_b: int | None = strawberry.field(name="peakMemoryKiB")

    @classmethod
    def of(cls, execution: Execution) -> UsageType | None:
        """What a run used; None before it has used anything measured."""
        if execution.usage_wall_time_ms is None and execution.usage_cpu_time_ms is None:
            return None
        return cls(
            wall_time_ms=execution.usage_wall_time_ms,
            cpu_time_ms=execution.usage_cpu_time_ms,
            peak_memory_ki_b=execution.usage_peak_memory_kib,
        )


@strawberry.type
class Artifact:
    """A file a run produced: a matplotlib figure, or a file it wrote to /tmp/outputs."""

    id: strawberry.ID
    name: str
    media_type: str
    size_bytes: int
    created_at: datetime
    # Set when it is shown to the viewers of a shared run: its url then carries the share's token.
    share_token: strawberry.Private[str | None] = None

    @strawberry.field(
        description=(
            "Where its owner (or an admin) downloads it: GET with the same Authorization header as /graphql. "
            "In a sharedExecution, a link that needs no sign-in (it carries the share's token)."
        )
    )
    def url(self) -> str:
        return artifact_url(self.id, self.share_token)

    @classmethod
    def from_model(cls, artifact: ArtifactModel, share_token: str | None = None) -> Artifact:
        """The GraphQL view of an artifact row."""
        return cls(
            id=strawberry.ID(str(artifact.id)),
            name=artifact.name,
            media_type=artifact.media_type,
            size_bytes=artifact.size_bytes,
            created_at=artifact.created_at,
            share_token=share_token,
        )

    @classmethod
    def from_event(cls, event: ArtifactEvent, share_token: str | None = None) -> Artifact:
        """The artifact an event announces (the event holds everything the type shows)."""
        return cls(
            id=strawberry.ID(str(event.artifact_id)),
            name=event.name,
            media_type=event.media_type,
            size_bytes=event.size_bytes,
            created_at=event.at,
            share_token=share_token,
        )


@strawberry.type
class ExecutionInputFile:
    """A file a run was given to read, as it was sent: "Run again" sends it once more."""

    name: str
    size_bytes: int
    content: str = strawberry.field(description="The file's bytes, base64-encoded.")


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
    limit_exceeded: LimitKind | None
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
    def runtime(self, info: Info) -> RuntimeType:
        return runtime_view(info, self.model.runtime, self.model.limits)

    @strawberry.field
    def limits(self) -> LimitsType:
        return LimitsType.from_pydantic(self.model.limits)

    @strawberry.field
    def usage(self) -> UsageType | None:
        return UsageType.of(self.model)

    @strawberry.field
    def owner(self) -> UserType:
        return UserType.from_model(self.model.owner)

    @strawberry.field(description="The tool version this run ran (runTool); null for any other run.")
    async def tool(self, info: Info) -> Annotated[ToolVersionType, strawberry.lazy("podrun.graphql.tools")] | None:
        from podrun.graphql.tools import ToolVersionType  # noqa: PLC0415 - the two modules refer to each other

        if self.model.tool_version_id is None:
            return None
        async with info.context.container.tools() as tools:
            version = await tools.by_id(self.model.tool_version_id)
        return None if version is None else ToolVersionType.from_model(version)

    @strawberry.field(description=OUTPUT_DESCRIPTION.format(stream="stdout"))
    async def stdout(self, info: Info) -> str:
        return await run_output(info, self.model, Stream.STDOUT)

    @strawberry.field(description=OUTPUT_DESCRIPTION.format(stream="stderr"))
    async def stderr(self, info: Info) -> str:
        return await run_output(info, self.model, Stream.STDERR)

    @strawberry.field(description="The files the run was given to read, in the order they were given.")
    async def input_files(self, info: Info) -> list[ExecutionInputFile]:
        return await input_files_of(info, self.model)

    @strawberry.field(description="The files the run has produced so far, in the order it produced them.")
    async def artifacts(self, info: Info) -> list[Artifact]:
        async with info.context.container.executions() as executions:
            rows = await executions.artifacts.of_execution(self.model.id)
        return [Artifact.from_model(artifact) for artifact in rows]


@strawberry.type
class ExecutionEdge:
    """An execution in a page, with the cursor that points at it."""

    cursor: str
    node: ExecutionType


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
            page_info=PageInfo.after(edges, page.has_next_page),
        )


@strawberry.type
class OutputLine:
    """A line of output, without its newline. `partial` lines did not end with a newline yet."""

    seq: int
    stream: Stream
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


@strawberry.type
class ArtifactCreated:
    """The script produced an artifact here, after the output before this seq and before the output after it."""

    seq: int
    artifact: Artifact


ExecutionEvent = Annotated[OutputChunk | StatusChange | ArtifactCreated, strawberry.union("ExecutionEvent")]


@strawberry.input
class InputFile:
    """A file placed read-only in the script's working directory, beside the script."""

    name: str = strawberry.field(
        description="A plain name: 1 to 100 letters, digits, '.', '_' or '-' (no paths), not main.py or outputs."
    )
    content: str = strawberry.field(description="The file's bytes, base64-encoded.")


@strawberry.input
class SubmitExecutionInput:
    """A script to run: its text in `script`, or a saved script's id in `scriptId` (exactly one of the two)."""

    script: str | None = None
    script_id: strawberry.ID | None = strawberry.field(
        default=None, description="Run a saved script of yours (its runtime unless `runtime` is given)."
    )
    runtime: str | None = strawberry.field(default=None, description="A runtime id; null for the default.")
    stdin: str | None = strawberry.field(
        default=None,
        description="Given: fed to the script, then EOF. Omitted: stdin stays open for sendInput.",
    )
    limits: LimitsInput | None = None
    idempotency_key: str | None = strawberry.field(
        default=None, description="Resubmitting with the same key returns the first execution instead of a new one."
    )
    files: list[InputFile] | None = strawberry.field(
        default=None, description="Files for the script to read, within a count and total size cap."
    )

    def request(self) -> SubmitRequest:
        """What the service is asked to run."""
        return SubmitRequest(
            script=self.script,
            runtime=self.runtime,
            stdin=self.stdin,
            limits=self.limits.to_pydantic().model_dump() if self.limits else {},
            idempotency_key=self.idempotency_key,
            files=[(file.name, file.content) for file in self.files or ()],
            script_id=self.script_id,
        )


@strawberry.type
class ExecutionQuery:
    """Reading runtimes and executions."""

    @strawberry.field(
        description="The runtimes on offer, with their default and maximum limits (signed in: those of your role)."
    )
    async def runtimes(self, info: Info) -> list[RuntimeType]:
        catalog = info.context.container.catalog
        user = await info.context.user()
        if user is None:
            return [RuntimeType.from_spec(runtime, catalog.isolation) for runtime in catalog.runtimes]
        role = (await info.context.container.policy.current()).for_role(user.role)
        return [
            RuntimeType.from_spec(
                runtime,
                catalog.isolation,
                role_limits(runtime, default=role.default_limits, maximum=role.max_limits),
            )
            for runtime in catalog.runtimes
        ]

    @strawberry.field(description="One execution, if it is yours (or you are an admin).", permission_classes=SIGNED_IN)
    async def execution(self, info: Info, id: strawberry.ID) -> ExecutionType | None:
        async with info.context.container.executions() as executions:
            return ExecutionType.from_model(await executions.visible(info.context.signed_in_user, id))

    @strawberry.field(
        description="Your executions (everyone's for an admin, or one user's with userId), newest first.",
        permission_classes=SIGNED_IN,
    )
    async def executions(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        status: ExecutionStatus | None = None,
        user_id: strawberry.ID | None = None,
    ) -> ExecutionConnection:
        user = info.context.signed_in_user
        async with info.context.container.executions() as executions:
            return ExecutionConnection.from_page(
                await executions.page(user, 20 if first is None else first, after, status, user_id)
            )


@strawberry.type
class ExecutionMutation:
    """Submitting and controlling runs."""

    @strawberry.mutation(
        description="Queue a script to run; watch it with executionEvents.", permission_classes=SIGNED_IN
    )
    async def submit_execution(self, info: Info, input: SubmitExecutionInput) -> ExecutionType:
        async with info.context.container.executions() as executions:
            return ExecutionType.from_model(await executions.submit(info.context.signed_in_user, input.request()))

    @strawberry.mutation(
        description="Stop a run: at once if queued, within a second if running.", permission_classes=SIGNED_IN
    )
    async def cancel_execution(self, info: Info, id: strawberry.ID) -> ExecutionType:
        async with info.context.container.executions() as executions:
            return ExecutionType.from_model(await executions.cancel(info.context.signed_in_user, id))

    @strawberry.mutation(
        description=(
            "Delete a run of yours (any run, for an admin) with its output, events and artifacts; a run still going "
            "is cancelled first. Returns the id deleted. NOT_FOUND for a run you cannot see (or already deleted); "
            "CONFLICT if a started run did not stop within a few seconds (nothing is deleted: try again)."
        ),
        permission_classes=SIGNED_IN,
    )
    async def delete_execution(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        async with info.context.container.executions() as executions:
            return strawberry.ID(str(await executions.delete_run(info.context.signed_in_user, id)))

    @strawberry.mutation(description="Write to a running script's stdin; eof closes it.", permission_classes=SIGNED_IN)
    async def send_input(self, info: Info, id: strawberry.ID, data: str, eof: bool | None = False) -> bool:
        async with info.context.container.executions() as executions:
            await executions.send_input(info.context.signed_in_user, id, data, eof=bool(eof))
        return True


@strawberry.type
class ExecutionSubscription:
    """Live output."""

    @strawberry.subscription(
        description="Every event after afterSeq, then live ones, ending with the terminal StatusChange.",
        permission_classes=SIGNED_IN,
    )
    async def execution_events(
        self, info: Info, id: strawberry.ID, after_seq: int | None = 0
    ) -> AsyncGenerator[ExecutionEvent, None]:
        container = info.context.container
        after_seq = after_seq or 0
        if after_seq < 0:
            raise BadUserInput("afterSeq must not be negative")
        execution_id, ended = await _visible_run(info, id)
        selects_execution = _selects_execution(info.selected_fields[0].selections)
        async for group in run_messages(container, execution_id, after_seq, ended=ended):
            if isinstance(group, StatusEvent):
                snapshot = _Snapshot(info, execution_id, group.seq)
                # Loaded here when the query selects `execution` (a failed load ends the subscription, as any
                # outage does); otherwise never: most watchers want the status alone (see _Snapshot).
                execution = await snapshot if selects_execution else cast("ExecutionType", snapshot)
                yield StatusChange(seq=group.seq, status=group.status, execution=execution)
            elif isinstance(group, ArtifactEvent):
                yield ArtifactCreated(seq=group.seq, artifact=Artifact.from_event(group))
            else:
                # A LineEvent has exactly OutputLine's fields, and the executor reads attributes.
                yield OutputChunk(lines=cast("list[OutputLine]", group))


async def _visible_run(info: Info, id: strawberry.ID) -> tuple[UUID, bool]:
    """The id of a run the caller may see, and whether it had ended; in a function of its own, so the subscription's
    generator (alive as long as it is) keeps neither the service and its session nor the row."""
    async with info.context.container.executions() as executions:
        execution = await executions.visible(info.context.signed_in_user, id)
        return execution.id, execution.status.terminal


async def run_messages(
    container: Container, execution_id: UUID, after_seq: int, *, ended: bool | None = None
) -> AsyncGenerator[StatusEvent | ArtifactEvent | list[LineEvent], None]:
    """A run's events after `after_seq` as they are sent, replayed then live, ending with the terminal status;
    `ended`: whether the run had ended when its row was read just before (streams/follow.py)."""
    event_log = EventLog(container.redis, container.keys, execution_id)

    async def load_archive() -> list[Entry] | None:
        async with container.executions() as executions:
            return await executions.archived_events(execution_id)

    async for batch in follow(container.stream_hub, event_log, after_seq, load_archive, ended=ended):
        for group in _messages(batch):
            yield group
            # A replay of a million lines is hundreds of chunks with nothing to wait on in between: the
            # process's other requests and subscribers get their turn after each one.
            await asyncio.sleep(0)


def _messages(batch: list[Event]) -> Iterator[StatusEvent | ArtifactEvent | list[LineEvent]]:
    """The batch as it is sent: status changes and artifacts alone, lines in chunks within MAX_CHUNK_BYTES."""
    lines: list[LineEvent] = []
    size = 0
    for event in batch:
        if not isinstance(event, LineEvent):
            if lines:
                yield lines
            lines, size = [], 0
            yield event
            continue
        wire_bytes = event.wire_bytes
        if size + wire_bytes > MAX_CHUNK_BYTES and lines:
            yield lines
            lines, size = [], 0
        lines.append(event)
        size += wire_bytes
    if lines:
        yield lines


async def input_files_of(info: Info, execution: Execution) -> list[ExecutionInputFile]:
    """The files a run was given, as they were sent."""
    async with info.context.container.executions() as executions:
        files = await executions.input_files(execution)
    return [
        ExecutionInputFile(name=name, size_bytes=len(base64.b64decode(content)), content=content)
        for name, content in files
    ]


async def run_output(info: Info, execution: Execution, stream: Stream) -> str:
    """A run's output on one stream, within the operation's output budget: a live run's from its log (read once
    per operation for both streams), an ended run's from its row (its size taken from the budget first)."""
    budget = output_budget.current()
    budget.check()
    container = info.context.container
    if not execution.status.terminal:

        async def read() -> output_budget.LiveOutput:
            async with container.executions() as executions:
                return await executions.live_output(execution.id)

        live = await budget.live(execution.id, read)
        if live is not None:
            budget.take(len(live[stream].encode()))
            return live[stream]
    async with container.executions() as executions:
        budget.take(await executions.repository.output_bytes(execution.id, stream))
        return await executions.repository.output(execution.id, stream)


def _selects_execution(selections: list[Selection]) -> bool:
    """Whether the subscription may select a StatusChange's `execution`: a field of that name directly under it or
    under its fragments (the union's members have no other field of that name)."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            if selection.name == "execution":
                return True
        elif _selects_execution(selection.selections):
            return True
    return False


class _Snapshot:
    """A StatusChange's `execution`, loaded when awaited: graphql-core awaits a field's awaitable value, and never
    touches a field the query does not select. Each change is loaded once per process, however many subscribers
    select it (graphql/snapshots.py)."""

    __slots__ = ("execution_id", "info", "seq")

    def __init__(self, info: Info, execution_id: UUID, seq: int) -> None:
        self.info = info
        self.execution_id = execution_id
        self.seq = seq

    def __await__(self) -> Generator[Any, None, ExecutionType]:
        load = partial(_load, self.info.context.container, self.execution_id)
        return self.info.context.snapshots.get(self.execution_id, self.seq, load).__await__()


async def _load(container: Container, execution_id: UUID) -> ExecutionType:
    async with container.executions() as executions:
        return ExecutionType.from_model(await executions.get(execution_id))
