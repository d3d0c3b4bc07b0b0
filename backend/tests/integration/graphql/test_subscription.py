"""The executionEvents resolver in-process (schema.subscribe), against the real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from podrun.accounts.models import User
from podrun.accounts.sign_ins import Caller
from podrun.container import Container
from podrun.core.limits import Limits
from podrun.core.output import Stream
from podrun.core.statuses import ExecutionStatus
from podrun.db.migrate import migrate
from podrun.executions.models import Execution
from podrun.executions.outcomes import Outcome
from podrun.graphql.context import Context
from podrun.graphql.schema import schema
from podrun.settings import Settings
from podrun.streams.log import LogWriter

EVENTS = """
subscription($id: ID!, $after: Int) {
  executionEvents(id: $id, afterSeq: $after) {
    __typename
    ... on OutputChunk { lines { seq stream text partial } }
    ... on StatusChange { seq status execution { id status stdout } }
  }
}
"""
LIMITS = Limits(wall_time_ms=1000, cpu_time_ms=1000, memory_mib=64, output_bytes=1 << 20, processes=4)


@pytest.fixture(scope="module")
async def container() -> AsyncIterator[Container]:
    settings = Settings()
    await asyncio.to_thread(migrate, settings)  # alembic runs its own event loop
    async with Container.running(settings, "api") as running:
        yield running


async def user(container: Container) -> User:
    async with container.users() as users:
        return await users.create_user(f"sub-{uuid.uuid4().hex[:12]}@example.com", "password-123")


async def running_execution(container: Container, owner: User) -> tuple[Execution, LogWriter]:
    """A run a (pretend) worker is driving: RUNNING, with its log started. No job is enqueued, and the
    holder's heartbeat keeps the watchdogs of other test workers sharing this database away from it."""
    holder = f"test-holder-{uuid.uuid4().hex}"
    await container.heartbeats.beat(holder, 120)
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
        writer = await LogWriter.resume(executions.event_log(execution.id))
    await writer.status(writer.status_event(ExecutionStatus.STARTING))
    await writer.status(writer.status_event(ExecutionStatus.RUNNING))
    return execution, writer


async def subscribe(container: Container, caller: User | None, execution_id: object, after: int = 0) -> Any:
    context = Context(
        container=container,
        caller=Caller(user=caller, sign_in_id=uuid.uuid4()) if caller is not None else None,
        authenticated=True,
    )
    return await schema.subscribe(EVENTS, {"id": str(execution_id), "after": after}, context_value=context)


async def test_replays_then_follows_live_then_completes_after_the_terminal_status(container: Container) -> None:
    owner = await user(container)
    execution, writer = await running_execution(container, owner)
    await writer.lines([(Stream.STDOUT, "before", False)])
    results = await subscribe(container, owner, execution.id)
    received: list[dict[str, Any]] = []
    async for result in results:
        assert result.errors is None, result.errors
        event = result.data["executionEvents"]
        received.append(event)
        if event.get("lines") == [{"seq": 3, "stream": "STDOUT", "text": "before", "partial": False}]:
            await writer.lines([(Stream.STDERR, "live", False), (Stream.STDOUT, "tail", True)])
        if event.get("lines") and event["lines"][-1]["text"] == "tail":
            async with container.executions() as executions:
                assert await executions.finish(execution.id, Outcome(ExecutionStatus.SUCCEEDED, exit_code=0), writer)
    flat = [
        (line["seq"], line["stream"], line["text"])
        if chunk["__typename"] == "OutputChunk"
        else (chunk["seq"], chunk["status"])
        for chunk in received
        for line in (chunk.get("lines") or [None])
    ]
    assert flat == [
        (1, "STARTING"),
        (2, "RUNNING"),
        (3, "STDOUT", "before"),
        (4, "STDERR", "live"),
        (5, "STDOUT", "tail"),
        (6, "SUCCEEDED"),
    ]
    assert received[-1]["execution"] == {"id": str(execution.id), "status": "SUCCEEDED", "stdout": "before\ntail"}


async def test_after_seq_resumes_a_finished_run_from_its_archive(container: Container) -> None:
    owner = await user(container)
    execution, writer = await running_execution(container, owner)
    await writer.lines([(Stream.STDOUT, str(i), False) for i in range(5)])
    async with container.executions() as executions:
        await executions.finish(execution.id, Outcome(ExecutionStatus.FAILED, exit_code=1), writer)
    await container.redis.delete(container.keys.events(execution.id))  # Redis lost it: PostgreSQL answers
    results = await subscribe(container, owner, execution.id, after=5)
    events = [result.data["executionEvents"] async for result in results]
    assert [line["text"] for line in events[0]["lines"]] == ["3", "4"]
    assert (events[-1]["seq"], events[-1]["status"], len(events)) == (8, "FAILED", 2)


async def test_signed_out_is_unauthenticated_and_another_users_run_is_not_found(container: Container) -> None:
    owner, stranger = await user(container), await user(container)
    execution, _ = await running_execution(container, owner)
    for caller, code in ((None, "UNAUTHENTICATED"), (stranger, "NOT_FOUND")):
        result = await subscribe(container, caller, execution.id)
        # Refused before it starts: one result with the error, as a whole or as the stream's only item.
        errors = result.errors if hasattr(result, "errors") else [r async for r in result][-1].errors
        assert [error.extensions["code"] for error in errors] == [code]
