"""Execution rows written straight into the test database, for the lifecycle tests."""

from __future__ import annotations

import uuid

from podrun.container import Container
from podrun.core.limits import Limits
from podrun.core.statuses import ExecutionStatus
from podrun.executions.models import Execution

LIMITS = Limits(wall_time_ms=1000, cpu_time_ms=1000, memory_mib=64, output_bytes=1 << 20, processes=4)


async def stored_run(
    container: Container,
    status: ExecutionStatus = ExecutionStatus.QUEUED,
    *,
    worker_id: str | None = None,
    files: list[dict[str, str]] | None = None,
) -> Execution:
    """A run of a new user, as a submission (or a worker, given `worker_id`) left it."""
    async with container.users() as users:
        owner = await users.create_user(f"life-{uuid.uuid4().hex[:12]}@example.com", "lifecycle horse battery staple")
    async with container.executions() as executions:
        return await executions.repository.add(
            Execution(
                owner_id=owner.id,
                runtime="python-3.12",
                script="print('hi')",
                limits=LIMITS,
                files=files,
                status=status,
                worker_id=worker_id,
            ),
            auto_commit=True,
        )


async def row(container: Container, execution: Execution) -> Execution:
    """The run's row as it is now."""
    found = await container.lifecycle.load(execution.id)
    assert found is not None
    return found
