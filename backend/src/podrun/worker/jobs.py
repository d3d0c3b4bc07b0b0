"""The arq jobs: each loads what it needs from the worker's container and calls the executions domain."""

from __future__ import annotations

from uuid import UUID

from podrun.executions.run import run_execution as run
from podrun.kernels.session import run_kernel as hold_kernel
from podrun.observability.tracing import continued
from podrun.worker.context import JobContext


async def run_execution(
    ctx: JobContext, execution_id: str, reattach_from: str | None = None, trace: dict[str, str] | None = None
) -> str:
    """Run one execution to its end (or, with `reattach_from`, take it over from a dead worker); its final status.

    `trace` is the submission's trace context: the run's spans continue its trace.
    """
    worker = ctx["podrun"]
    container = worker.container
    attributes = {"podrun.execution_id": execution_id}
    with continued("run execution", trace, **attributes):
        # No session is held for the run: each of its steps opens and closes its own (executions/lifecycle.py).
        return await run(
            container.lifecycle,
            container.runner,
            container.heartbeats,
            worker_id=worker.worker_id,
            execution_id=UUID(execution_id),
            reattach_from=reattach_from,
        )


async def run_kernel(
    ctx: JobContext, kernel_id: str, reattach_from: str | None = None, trace: dict[str, str] | None = None
) -> str:
    """Hold one kernel for its whole life: its sandbox, then its cells in order (kernels/session.py).

    With `reattach_from` (a worker that died holding it), take it over and go on with its sandbox.
    """
    worker = ctx["podrun"]
    container = worker.container
    with continued("run kernel", trace, **{"podrun.kernel_id": kernel_id}):
        return await hold_kernel(
            container.kernel_lifecycle,
            container.lifecycle,
            container.runner,
            container.heartbeats,
            container.kernel_wakes,
            worker_id=worker.worker_id,
            kernel_id=UUID(kernel_id),
            reattach_from=reattach_from,
        )
