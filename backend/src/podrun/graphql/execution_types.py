"""GraphQL object and input types of executions (runtimes, usage, artifacts, the run, its page and its events),
and the helpers their fields resolve with. The resolvers are in graphql/executions.py."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Protocol, TypedDict

import strawberry

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
from podrun.runners import scientific
from podrun.runners.base import RuntimeSpec
from podrun.streams.events import ArtifactEvent
from podrun.tools.service import may_read_source

if TYPE_CHECKING:
    from podrun.graphql.kernels import KernelType
    from podrun.graphql.tools import ToolVersionType

strawberry.enum(ExecutionStatus, description="QUEUED, STARTING and RUNNING are active; the rest are terminal.")
strawberry.enum(Stream, name="OutputStream")
strawberry.enum(LimitKind, description="The limit that ended a run.")

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


class RowFields(TypedDict):
    """The fields a view of a run (Execution, SharedExecution) shows as its row holds them."""

    model: Execution
    id: strawberry.ID
    status: ExecutionStatus
    exit_code: int | None
    signal: int | None
    limit_exceeded: LimitKind | None
    error: str | None
    output_truncated: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


SCRIPT_DESCRIPTION = (
    "The script it ran; empty for a run of a tool whose author keeps the tool's script to themselves "
    "(its author and admins see it)."
)


class _RunView(Protocol):
    model: Execution


async def visible_script(root: _RunView, info: Info) -> str:
    """The run's script, unless it is the script of a tool version the viewer may not read."""
    execution = root.model
    if execution.tool_version_id is None:
        return execution.script
    version = await info.context.loaders.tool_versions.load(execution.tool_version_id)
    if version is None or may_read_source(info.context.current_user, version):
        return execution.script
    return ""


def row_fields(execution: Execution) -> RowFields:
    """What every view of a run takes from its row."""
    return RowFields(
        model=execution,
        id=strawberry.ID(str(execution.id)),
        status=execution.status,
        exit_code=execution.exit_code,
        signal=execution.signal,
        limit_exceeded=execution.limit_exceeded,
        error=execution.error,
        output_truncated=execution.output_truncated,
        created_at=execution.created_at,
        started_at=execution.started_at,
        finished_at=execution.finished_at,
    )


@strawberry.type(name="Execution")
class ExecutionType:
    """One submitted script and its run."""

    model: strawberry.Private[Execution]
    id: strawberry.ID
    status: ExecutionStatus
    script: str = strawberry.field(resolver=visible_script, description=SCRIPT_DESCRIPTION)
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
        return cls(**row_fields(execution), stdin=execution.stdin)

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
        version = await info.context.loaders.tool_versions.load(self.model.tool_version_id)
        return None if version is None else ToolVersionType.from_model(version)

    @strawberry.field(description="The kernel this run is a cell of (runInKernel); null for any other run.")
    async def kernel(self, info: Info) -> Annotated[KernelType, strawberry.lazy("podrun.graphql.kernels")] | None:
        from podrun.graphql.kernels import KernelType  # noqa: PLC0415 - the two modules refer to each other

        if self.model.kernel_id is None:
            return None
        kernel = await info.context.loaders.kernels.load(self.model.kernel_id)
        return None if kernel is None else KernelType.from_model(kernel)

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
        rows = await info.context.loaders.artifacts.load(self.model.id)
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


async def input_files_of(info: Info, execution: Execution) -> list[ExecutionInputFile]:
    """The files a run was given, as they were sent."""
    files = await info.context.loaders.input_files.load(execution.id)
    return [
        ExecutionInputFile(
            name=file.name, size_bytes=len(file.content), content=base64.b64encode(file.content).decode()
        )
        for file in files
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
