"""GraphQL types and resolvers for kernels: start, read, list, run a cell, restart, stop.

A cell is an ordinary Execution (`runInKernel` returns it): it is watched with executionEvents and
interrupted with cancelExecution.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import strawberry
from strawberry.permission import BasePermission

from podrun.core import pages
from podrun.core.statuses import KernelStatus
from podrun.graphql.connections import PageInfo
from podrun.graphql.context import Info
from podrun.graphql.execution_types import ExecutionConnection, ExecutionEdge, ExecutionType, RuntimeType, runtime_view
from podrun.graphql.limits import LimitsInput, LimitsType
from podrun.graphql.permissions import IsAuthenticated
from podrun.kernels.models import Kernel
from podrun.kernels.service import CELL_CURSOR_KIND, CURSOR_KIND

SIGNED_IN: list[type[BasePermission]] = [IsAuthenticated]

strawberry.enum(KernelStatus, description="What a kernel is doing.")


@strawberry.type(name="Kernel")
class KernelType:
    """A Python process kept alive for its owner between cells (runInKernel), in a sandbox of its own."""

    model: strawberry.Private[Kernel]
    id: strawberry.ID
    status: KernelStatus = strawberry.field(
        description="STARTING (waiting for a worker or its sandbox; also while restarting), IDLE, BUSY (a cell "
        "runs; cells sent meanwhile wait QUEUED), STOPPED (asked to, or idle too long) or DEAD (its process died)."
    )
    idle_timeout_s: int = strawberry.field(description="Seconds without a cell after which the kernel is stopped.")
    created_at: datetime
    last_used_at: datetime | None = strawberry.field(description="When its last cell ended (or it became idle).")
    error: str | None = strawberry.field(description="Why it is STOPPED or DEAD.")

    @classmethod
    def from_model(cls, kernel: Kernel) -> KernelType:
        """The GraphQL view of a kernel row."""
        return cls(
            model=kernel,
            id=strawberry.ID(str(kernel.id)),
            status=kernel.status,
            idle_timeout_s=kernel.idle_timeout_s,
            created_at=kernel.created_at,
            last_used_at=kernel.last_used_at,
            error=kernel.error,
        )

    @strawberry.field
    def runtime(self, info: Info) -> RuntimeType:
        return runtime_view(info, self.model.runtime, self.model.limits)

    @strawberry.field(description="Memory and processes for the whole kernel; wall and CPU time for each cell.")
    def limits(self) -> LimitsType:
        return LimitsType.from_pydantic(self.model.limits)

    @strawberry.field(description="When the idle timeout stops it if no cell runs before; null unless it is IDLE.")
    def stops_at(self) -> datetime | None:
        kernel = self.model
        if kernel.status is not KernelStatus.IDLE or kernel.last_used_at is None:
            return None
        return kernel.last_used_at + timedelta(seconds=kernel.idle_timeout_s)

    @strawberry.field(description="How many of its cells wait for the one running (or for the kernel to start).")
    async def queued_cells(self, info: Info) -> int:
        return await info.context.loaders.queued_cells.load(self.model.id)

    @strawberry.field(description="Its cells, oldest first (the order they ran in).")
    async def cells(self, info: Info, first: int | None = 100, after: str | None = None) -> ExecutionConnection:
        async with info.context.container.kernels() as kernels:
            page = await kernels.cells(self.model.id, 100 if first is None else first, after)
        edges = [
            ExecutionEdge(cursor=pages.encode_cursor(CELL_CURSOR_KIND, cell.id), node=ExecutionType.from_model(cell))
            for cell in page.cells
        ]
        return ExecutionConnection(edges=edges, page_info=PageInfo.after(edges, page.has_next_page))


@strawberry.type
class KernelEdge:
    """A kernel in a page, with the cursor that points at it."""

    cursor: str
    node: KernelType


@strawberry.type
class KernelConnection:
    """A page of kernels, newest first."""

    edges: list[KernelEdge]
    page_info: PageInfo


@strawberry.input
class StartKernelInput:
    """A kernel to start."""

    runtime: str | None = strawberry.field(default=None, description="A runtime id; null for the default.")
    limits: LimitsInput | None = strawberry.field(
        default=None, description="Memory and processes for the whole kernel; wall and CPU time for each cell."
    )
    idle_timeout_s: int | None = strawberry.field(
        default=None,
        description="Seconds without a cell before it is stopped; null for the default (at most a maximum).",
    )


@strawberry.type
class KernelQuery:
    """Reading kernels."""

    @strawberry.field(description="Your kernels, newest first.", permission_classes=SIGNED_IN)
    async def kernels(self, info: Info, first: int | None = 20, after: str | None = None) -> KernelConnection:
        async with info.context.container.kernels() as kernels:
            page = await kernels.page(info.context.signed_in_user, 20 if first is None else first, after)
        edges = [
            KernelEdge(cursor=pages.encode_cursor(CURSOR_KIND, kernel.id), node=KernelType.from_model(kernel))
            for kernel in page.kernels
        ]
        return KernelConnection(edges=edges, page_info=PageInfo.after(edges, page.has_next_page))

    @strawberry.field(description="One of your kernels (NOT_FOUND for anyone else's).", permission_classes=SIGNED_IN)
    async def kernel(self, info: Info, id: strawberry.ID) -> KernelType | None:
        async with info.context.container.kernels() as kernels:
            return KernelType.from_model(await kernels.visible(info.context.signed_in_user, id))


@strawberry.type
class KernelMutation:
    """Starting kernels, running code in them, restarting and stopping them."""

    @strawberry.mutation(
        description="Start a kernel: a Python process that keeps its state between cells. It counts as one of your "
        "runs in progress until it stops.",
        permission_classes=SIGNED_IN,
    )
    async def start_kernel(self, info: Info, input: StartKernelInput) -> KernelType:
        limits = input.limits.to_pydantic().model_dump() if input.limits else {}
        async with info.context.container.kernels() as kernels:
            kernel = await kernels.start(info.context.signed_in_user, input.runtime, limits, input.idle_timeout_s)
            return KernelType.from_model(kernel)

    @strawberry.mutation(
        description="Run code in your kernel as a cell: an Execution, QUEUED behind the kernel's earlier cells; watch "
        "it with executionEvents, interrupt it with cancelExecution. The value of its last expression is printed as "
        "the Python REPL shows it. CONFLICT if the kernel has stopped or died.",
        permission_classes=SIGNED_IN,
    )
    async def run_in_kernel(self, info: Info, kernel_id: strawberry.ID, code: str) -> ExecutionType:
        async with info.context.container.kernels() as kernels:
            return ExecutionType.from_model(await kernels.run_cell(info.context.signed_in_user, kernel_id, code))

    @strawberry.mutation(
        description="Give the kernel a fresh process (same id): its state is gone, a running cell is interrupted and "
        "waiting ones cancelled.",
        permission_classes=SIGNED_IN,
    )
    async def restart_kernel(self, info: Info, id: strawberry.ID) -> KernelType:
        async with info.context.container.kernels() as kernels:
            return KernelType.from_model(await kernels.restart(info.context.signed_in_user, id))

    @strawberry.mutation(
        description="Stop the kernel and free its sandbox; a running cell is interrupted, waiting ones cancelled.",
        permission_classes=SIGNED_IN,
    )
    async def stop_kernel(self, info: Info, id: strawberry.ID) -> KernelType:
        async with info.context.container.kernels() as kernels:
            return KernelType.from_model(await kernels.stop(info.context.signed_in_user, id))
