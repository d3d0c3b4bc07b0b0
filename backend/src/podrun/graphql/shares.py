"""GraphQL types and resolvers for runs shared by link: share, unshare, read and follow one by its token.

Viewers need no sign-in. They see the script, output, figures and outcome of the run, never its owner, and
its stdin and input files only when the owner shared them too.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated, cast

import strawberry

from podrun.container import Container
from podrun.core.errors import BadUserInput, NotFound
from podrun.core.limits import LimitKind
from podrun.core.output import Stream
from podrun.core.statuses import ExecutionStatus
from podrun.executions.models import Execution
from podrun.executions.shares import SharedRun, Shares
from podrun.graphql.context import Info
from podrun.graphql.execution_types import (
    SCRIPT_DESCRIPTION,
    Artifact,
    ArtifactCreated,
    ExecutionInputFile,
    ExecutionType,
    OutputChunk,
    OutputLine,
    RuntimeType,
    UsageType,
    input_files_of,
    row_fields,
    run_output,
    runtime_view,
    visible_script,
)
from podrun.graphql.executions import SIGNED_IN, run_messages
from podrun.streams.events import ArtifactEvent, StatusEvent

SHARED_PATH = "/shared/"
# While a shared run streams, how often its share is checked again (a revoked share ends the stream).
RECHECK_S = 1.0


@strawberry.type(name="ExecutionShare")
class ExecutionShareType:
    """A run's link: open `url` (or pass `token` to sharedExecution) to view the run without signing in."""

    execution: ExecutionType
    token: str = strawberry.field(description="Shown once: only its hash is kept. Sharing again makes a new one.")
    url: str = strawberry.field(description="The web client's read-only page of the run.")
    include_input: bool = strawberry.field(description="Whether viewers also see the run's stdin and input files.")


@strawberry.type
class SharedExecution:
    """A run shared by link, read-only: what anyone with the link sees (never who ran it)."""

    model: strawberry.Private[Execution]
    token: strawberry.Private[str]
    id: strawberry.ID
    status: ExecutionStatus
    script: str = strawberry.field(resolver=visible_script, description=SCRIPT_DESCRIPTION)
    exit_code: int | None
    signal: int | None
    limit_exceeded: LimitKind | None
    error: str | None
    output_truncated: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    includes_input: bool = strawberry.field(description="Whether the owner shared the run's stdin and input files.")

    @classmethod
    def from_shared(cls, shared: SharedRun, token: str) -> SharedExecution:
        """The view of a shared run."""
        return cls(**row_fields(shared.execution), token=token, includes_input=shared.include_input)

    @strawberry.field
    def runtime(self, info: Info) -> RuntimeType:
        return runtime_view(info, self.model.runtime, self.model.limits)

    @strawberry.field
    def usage(self) -> UsageType | None:
        return UsageType.of(self.model)

    @strawberry.field(description="The stdin it was given; null unless the owner shared the run's input.")
    def stdin(self) -> str | None:
        return self.model.stdin if self.includes_input else None

    @strawberry.field(description="The files it was given; null unless the owner shared the run's input.")
    async def input_files(self, info: Info) -> list[ExecutionInputFile] | None:
        return await input_files_of(info, self.model) if self.includes_input else None

    @strawberry.field(description="Everything written to stdout so far, within the request's output budget.")
    async def stdout(self, info: Info) -> str:
        return await run_output(info, self.model, Stream.STDOUT)

    @strawberry.field(description="Everything written to stderr so far, within the request's output budget.")
    async def stderr(self, info: Info) -> str:
        return await run_output(info, self.model, Stream.STDERR)

    @strawberry.field(description="Its figures and files; their urls download without sign-in.")
    async def artifacts(self, info: Info) -> list[Artifact]:
        rows = await info.context.loaders.artifacts.load(self.model.id)
        return [Artifact.from_model(artifact, self.token) for artifact in rows]


@strawberry.type
class SharedStatusChange:
    """The shared run moved to `status`; `execution` is its state when the event is delivered."""

    seq: int
    status: ExecutionStatus
    execution: SharedExecution


SharedExecutionEvent = Annotated[
    OutputChunk | SharedStatusChange | ArtifactCreated, strawberry.union("SharedExecutionEvent")
]


@strawberry.type
class ShareQuery:
    """Reading a shared run."""

    @strawberry.field(
        description="The run shared under this token, without sign-in; null for an unknown or revoked token."
    )
    async def shared_execution(self, info: Info, token: str) -> SharedExecution | None:
        shared = await _shared(info.context.container, token)
        return None if shared is None else SharedExecution.from_shared(shared, token)


@strawberry.type
class ShareMutation:
    """Sharing runs by link."""

    @strawberry.mutation(
        description=(
            "Make a run of yours viewable by anyone with the link (read-only: script, output, figures; its stdin "
            "and input files only with includeInput). Sharing a run again makes a new link and revokes the old. "
            "NOT_FOUND for a run you cannot see."
        ),
        permission_classes=SIGNED_IN,
    )
    async def share_execution(
        self, info: Info, id: strawberry.ID, include_input: bool | None = False
    ) -> ExecutionShareType:
        async with info.context.container.executions() as executions:
            execution, token = await Shares(executions).share(
                info.context.signed_in_user, id, include_input=bool(include_input)
            )
        return ExecutionShareType(
            execution=ExecutionType.from_model(execution),
            token=token,
            url=f"{_public_base(info)}{SHARED_PATH}{token}",
            include_input=bool(include_input),
        )

    @strawberry.mutation(
        description=(
            "Revoke a run's link: its token then reads as unknown and its live viewers' streams end. False if it "
            "was not shared; NOT_FOUND for a run you cannot see."
        ),
        permission_classes=SIGNED_IN,
    )
    async def unshare_execution(self, info: Info, id: strawberry.ID) -> bool:
        async with info.context.container.executions() as executions:
            return await Shares(executions).unshare(info.context.signed_in_user, id)


@strawberry.type
class ShareSubscription:
    """Watching a shared run."""

    @strawberry.subscription(
        description=(
            "A shared run's events after afterSeq, then live ones, without sign-in, ending with the terminal "
            "SharedStatusChange, or at once (with no event) once the share is revoked. NOT_FOUND for an unknown or "
            "revoked token."
        )
    )
    async def shared_execution_events(
        self, info: Info, token: str, after_seq: int | None = 0
    ) -> AsyncGenerator[SharedExecutionEvent, None]:
        container = info.context.container
        after_seq = after_seq or 0
        if after_seq < 0:
            raise BadUserInput("afterSeq must not be negative")
        shared = await _shared(container, token)
        if shared is None:
            raise NotFound("no run is shared under this token")
        execution_id = shared.execution.id
        checked = time.monotonic()
        async for group in run_messages(container, execution_id, after_seq):
            if time.monotonic() - checked >= RECHECK_S:
                if await _shared(container, token) is None:
                    return
                checked = time.monotonic()
            if isinstance(group, StatusEvent):
                current = await _shared(container, token)
                if current is None:
                    return
                yield SharedStatusChange(
                    seq=group.seq, status=group.status, execution=SharedExecution.from_shared(current, token)
                )
            elif isinstance(group, ArtifactEvent):
                yield ArtifactCreated(seq=group.seq, artifact=Artifact.from_event(group, token))
            else:
                yield OutputChunk(lines=cast("list[OutputLine]", group))


async def _shared(container: Container, token: str) -> SharedRun | None:
    async with container.executions() as executions:
        return await Shares(executions).shared(token)


def _public_base(info: Info) -> str:
    """Where people open Podrun: the public_url setting, else the base URL the request came to."""
    configured = info.context.container.settings.public_url
    if configured:
        return configured.rstrip("/")
    connection = info.context.request if info.context.request is not None else info.context.websocket
    return str(connection.base_url).rstrip("/") if connection is not None else ""
