"""sendInput's bounds against the real PostgreSQL and Redis, with no worker: the input window and the per-user rate."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from podrun.accounts.models import User
from podrun.container import Container
from podrun.core.errors import RateLimited
from podrun.core.limits import Limits
from podrun.core.statuses import ExecutionStatus
from podrun.db.migrate import migrate
from podrun.executions.models import Execution
from podrun.settings import LimitSettings, QuotaSettings, Settings
from podrun.streams.control import ControlStream

CAP = 100
CALLS_PER_MINUTE = 5
LIMITS = Limits(wall_time_ms=1000, cpu_time_ms=1000, memory_mib=64, output_bytes=1 << 20, processes=4)


@pytest.fixture(scope="module")
async def container() -> AsyncIterator[Container]:
    settings = Settings(
        limits=LimitSettings(pending_input_bytes=CAP),
        quotas=QuotaSettings(input_calls_per_minute=CALLS_PER_MINUTE),
    )
    await asyncio.to_thread(migrate, settings)  # alembic runs its own event loop
    async with Container.running(settings, "api") as running:
        yield running


async def running_execution(container: Container, owner: User | None = None) -> tuple[User, Execution]:
    """A RUNNING run (of a new user, unless given) that no worker drives, so nothing takes its input."""
    if owner is None:
        async with container.users() as users:
            owner = await users.create_user(f"input-{uuid.uuid4().hex[:12]}@example.com", "input horse battery staple")
    holder = f"test-holder-{uuid.uuid4().hex}"
    await container.heartbeats.beat(holder, 120)  # keeps other tests' watchdogs away from the run
    async with container.executions() as executions:
        execution = await executions.repository.add(
            Execution(
                owner_id=owner.id,
                runtime="python-3.12",
                script="",
                limits=LIMITS,
                status=ExecutionStatus.RUNNING,
                worker_id=holder,
            ),
            auto_commit=True,
        )
    return owner, execution


async def send(container: Container, owner: User, execution: Execution, data: str) -> None:
    async with container.executions() as executions:
        await executions.send_input(owner, str(execution.id), data, eof=False)


async def waiting_input(container: Container, execution: Execution) -> list[bytes]:
    entries = await container.redis.xrange(container.keys.control(execution.id))
    return [fields[b"data"] for _, fields in entries if fields[b"op"] == b"input"]


async def test_input_past_the_cap_is_refused_and_changes_nothing_until_the_sandbox_takes_some(
    container: Container,
) -> None:
    owner, execution = await running_execution(container)
    await send(container, owner, execution, "a" * 60)
    await send(container, owner, execution, "b" * 40)
    with pytest.raises(RateLimited) as refused:
        await send(container, owner, execution, "c")
    assert refused.value.retry_after_ms > 0
    assert refused.value.extensions["code"] == "RATE_LIMITED"
    assert await waiting_input(container, execution) == [b"a" * 60, b"b" * 40]

    # The worker put the first 60 bytes into the sandbox: as many fit again, and no more.
    await ControlStream(container.redis, container.keys, execution.id).delivered(60)
    await send(container, owner, execution, "é" * 30)
    with pytest.raises(RateLimited):
        await send(container, owner, execution, "d")
    assert await waiting_input(container, execution) == [b"a" * 60, b"b" * 40, "é".encode() * 30]


async def test_input_calls_past_a_users_rate_are_refused_on_all_their_runs_only(container: Container) -> None:
    owner, first = await running_execution(container)
    other_user, other_users_run = await running_execution(container)
    _, second = await running_execution(container, owner)
    for index in range(CALLS_PER_MINUTE):
        await send(container, owner, first if index % 2 else second, "x")
    with pytest.raises(RateLimited) as refused:
        await send(container, owner, first, "late")
    assert 0 < refused.value.retry_after_ms <= 60_000
    await send(container, other_user, other_users_run, "another user's")
    assert await waiting_input(container, first) == [b"x"] * (CALLS_PER_MINUTE // 2)
    assert await waiting_input(container, second) == [b"x"] * (CALLS_PER_MINUTE - CALLS_PER_MINUTE // 2)
