"""The arq jobs: each loads what it needs from the worker's container and calls the executions domain."""

from __future__ import annotations

from uuid import UUID

from podrun.executions.run import run_execution as run
from podrun.worker.context import JobContext


async def run_execution(ctx: JobContext, execution_id: str, reattach_from: str | None = None) -> str:
    """Run one execution to its end (or, with `reattach_from`, take it over from a dead worker); its final status."""
    worker = ctx["podrun"]
    container = worker.container
    async with container.executions() as executions:
        return await run(
            executions,
            container.runner,
            container.heartbeats,
            worker_id=worker.worker_id,
            execution_id=UUID(execution_id),
            reattach_from=reattach_from,
        )
