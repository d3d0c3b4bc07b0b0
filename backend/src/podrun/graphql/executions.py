"""GraphQL resolvers for executions: submit, read, list, cancel, input, and the live events (their types are in
graphql/execution_types.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Generator, Iterator
from functools import partial
from typing import Any, cast
from uuid import UUID

import strawberry
from strawberry.permission import BasePermission
from strawberry.types.nodes import SelectedField, Selection

from podrun.container import Container
from podrun.core.errors import BadUserInput
from podrun.core.statuses import ExecutionStatus
from podrun.graphql.context import Info
from podrun.graphql.execution_types import (
    Artifact,
    ArtifactCreated,
    ExecutionConnection,
    ExecutionEvent,
    ExecutionType,
    OutputChunk,
    OutputLine,
    RuntimeType,
    StatusChange,
    SubmitExecutionInput,
)
from podrun.graphql.permissions import IsAuthenticated
from podrun.runners.catalog import role_limits
from podrun.streams.events import ArtifactEvent, Entry, LineBatch, LineEvent, Lines, StatusEvent
from podrun.streams.follow import follow
from podrun.streams.log import EventLog

SIGNED_IN: list[type[BasePermission]] = [IsAuthenticated]
# One OutputChunk's lines as JSON stay below this, so a message stays under 256 KiB (clients with a
# 1 MiB limit never break); a single line is at most 192 KiB of JSON (streams/lines.py).
MAX_CHUNK_BYTES = 240 * 1024


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
                # Lines gives LineEvents, which have exactly OutputLine's fields (graphql/flat_objects.py reads
                # them by columns instead).
                yield OutputChunk(lines=cast("list[OutputLine]", group))


async def _visible_run(info: Info, id: strawberry.ID) -> tuple[UUID, bool]:
    """The id of a run the caller may see, and whether it had ended; in a function of its own, so the subscription's
    generator (alive as long as it is) keeps neither the service and its session nor the row."""
    async with info.context.container.executions() as executions:
        execution_id, status = await executions.visible_status(info.context.signed_in_user, id)
        return execution_id, status.terminal


async def run_messages(
    container: Container, execution_id: UUID, after_seq: int, *, ended: bool | None = None
) -> AsyncGenerator[StatusEvent | ArtifactEvent | Lines, None]:
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


def _messages(batch: list[Entry]) -> Iterator[StatusEvent | ArtifactEvent | Lines]:
    """The batch as it is sent: status changes and artifacts alone, lines in chunks within MAX_CHUNK_BYTES (a batch
    of lines is cut where its lines' bounds reach it; a single line longer than that is a chunk of its own)."""
    pieces: list[LineBatch | LineEvent] = []
    size = 0
    for entry in batch:
        if isinstance(entry, StatusEvent | ArtifactEvent):
            if pieces:
                yield Lines(pieces)
            pieces, size = [], 0
            yield entry
            continue
        piece = entry
        while True:
            wire_bytes = piece.wire_bytes
            alone = not pieces and (isinstance(piece, LineEvent) or len(piece.codes) == 1)
            if size + wire_bytes <= MAX_CHUNK_BYTES or alone:
                pieces.append(piece)
                size += wire_bytes
                break
            if isinstance(piece, LineBatch):
                # The lines that fit close this chunk (the first line alone, in an empty one); the rest go on.
                fitting = piece.fitting(MAX_CHUNK_BYTES - size) or (0 if pieces else 1)
                if fitting:
                    head, piece = piece.split(fitting)
                    pieces.append(head)
            yield Lines(pieces)
            pieces, size = [], 0
    if pieces:
        yield Lines(pieces)


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
