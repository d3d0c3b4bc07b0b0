"""Catch-up: a late watcher of a finished run with 100,000 lines, through the executionEvents resolver.

The run is written as a worker writes it (the Redis log, then the PostgreSQL archive). The watcher
subscribes in-process (`schema.subscribe`) and every result is JSON-encoded as the WebSocket would
send it, once with the Redis log in place and once after it expired (the archive answers). Baseline:
the same events read straight from Redis with XRANGE and JSON-encoded, no GraphQL.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from bench.report import Failed, Figure
from podrun.accounts.models import User
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

LINES = 100_000
# The database the benchmark fills (and drops nothing of: rows are kept small).
DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/podrun_bench"
EVENTS = """
subscription($id: ID!) {
  executionEvents(id: $id) {
    ... on OutputChunk { lines { seq stream text at partial } }
    ... on StatusChange { seq status }
  }
}
"""
LIMITS = Limits(wall_time_ms=1000, cpu_time_ms=1000, memory_mib=64, output_bytes=8 << 20, processes=4)


async def _finished_run(container: Container, owner: User) -> uuid.UUID:
    async with container.executions() as executions:
        execution = await executions.repository.add(
            Execution(owner_id=owner.id, runtime="bench", script="", limits=LIMITS, status=ExecutionStatus.RUNNING),
            auto_commit=True,
        )
        writer = await LogWriter.resume(executions.event_log(execution.id))
        await writer.status(writer.status_event(ExecutionStatus.RUNNING))
        for start in range(0, LINES, 1000):
            await writer.lines([(Stream.STDOUT, str(i), False) for i in range(start, start + 1000)])
        await executions.finish(execution.id, Outcome(ExecutionStatus.SUCCEEDED, exit_code=0), writer)
        return execution.id


async def _watch(container: Container, owner: User, execution_id: uuid.UUID) -> tuple[float, int, int]:
    """Seconds to receive everything, lines received, WebSocket messages."""
    context = Context(container=container, current_user=owner, authenticated=True)
    started = time.perf_counter()
    results: Any = await schema.subscribe(EVENTS, {"id": str(execution_id)}, context_value=context)
    lines = messages = 0
    async for result in results:
        if result.errors:
            raise Failed(f"subscription error: {result.errors}")
        json.dumps({"type": "next", "payload": {"data": result.data}})
        messages += 1
        lines += len(result.data["executionEvents"].get("lines") or [])
    return time.perf_counter() - started, lines, messages


async def run() -> list[Figure]:
    """Replay 100k lines to a late watcher from Redis and from PostgreSQL; baseline: raw XRANGE."""
    settings = Settings(database_url=DATABASE_URL)
    await asyncio.to_thread(migrate, settings)  # alembic runs its own event loop
    async with Container.running(settings, "api") as container:
        async with container.users() as users:
            owner = await users.create_user(f"bench-{uuid.uuid4().hex[:12]}@example.com", "password-123")
        execution_id = await _finished_run(container, owner)
        key = container.keys.events(execution_id)
        started = time.perf_counter()
        raw = 0
        cursor = "-"
        while entries := await container.redis.xrange(key, min=cursor, count=10_000):
            json.dumps([[entry.decode(), {k.decode(): v.decode() for k, v in f.items()}] for entry, f in entries])
            raw += len(entries)
            cursor = "(" + entries[-1][0].decode()
        raw_s = time.perf_counter() - started
        redis_s, redis_lines, redis_messages = await _watch(container, owner, execution_id)
        await container.redis.delete(key)
        archive_s, archive_lines, archive_messages = await _watch(container, owner, execution_id)
    if (redis_lines, archive_lines) != (LINES, LINES) or raw != LINES + 2:
        raise Failed(f"lines received: redis {redis_lines}, archive {archive_lines}, raw {raw}")
    return [
        Figure("from Redis: lines/s", f"{LINES / redis_s:,.0f}", f"{raw / raw_s:,.0f} raw XRANGE + JSON"),
        Figure("from Redis: seconds, messages", f"{redis_s:.2f} s, {redis_messages}"),
        Figure("from PostgreSQL: lines/s", f"{LINES / archive_s:,.0f}"),
        Figure("from PostgreSQL: seconds, messages", f"{archive_s:.2f} s, {archive_messages}"),
    ]
