"""Catch-up: a late watcher of a finished run with 100,000 lines.

The run is written as a worker writes it (the Redis log, then the PostgreSQL archive). A watcher
then replays it end to end — a real API process, a WebSocket client speaking graphql-transport-ws,
every message parsed — once with the Redis log in place and once after it expired (the archive
answers); and in-process through the resolver (`schema.subscribe`), to tell the server's share.
Baseline: the same events read straight from Redis with XRANGE, split into lines and JSON-encoded, no GraphQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import websockets

from bench.report import Failed, Figure
from bench.system import Target
from podrun.accounts.models import User
from podrun.accounts.sign_ins import Caller, Origin
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
EVENTS = """
subscription($id: ID!) {
  executionEvents(id: $id) {
    ... on OutputChunk { lines { seq stream text at partial } }
    ... on StatusChange { seq status }
  }
}
"""
WRITER_ID = "bench-catchup-writer"
LIMITS = Limits(wall_time_ms=1000, cpu_time_ms=1000, memory_mib=64, output_bytes=8 << 20, processes=4)


def free_port() -> int:
    """A TCP port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _finished_run(container: Container, owner: User) -> uuid.UUID:
    # Written as a live worker would write it: the benchmark's own worker must not take the run for an orphan.
    await container.heartbeats.beat(WRITER_ID, 600)
    async with container.executions() as executions:
        execution = await executions.repository.add(
            Execution(
                owner_id=owner.id,
                runtime="bench",
                script="",
                limits=LIMITS,
                status=ExecutionStatus.RUNNING,
                worker_id=WRITER_ID,
            ),
            auto_commit=True,
        )
        execution_id = execution.id  # before finish() commits and expires the row
        writer = await LogWriter.resume(executions.event_log(execution_id))
        await writer.status(writer.status_event(ExecutionStatus.RUNNING))
        for start in range(0, LINES, 1000):
            await writer.lines([(Stream.STDOUT, [str(i) for i in range(start, start + 1000)], False)])
        await executions.finish(execution_id, Outcome(ExecutionStatus.SUCCEEDED, exit_code=0), writer)
    await container.heartbeats.stop(WRITER_ID)
    return execution_id


async def _watch(container: Container, owner: User, execution_id: uuid.UUID) -> tuple[float, int, int]:
    """Seconds to receive everything, lines received, WebSocket messages."""
    # A subscription run in-process: no socket, so no sign-in is checked again; any id stands for one.
    context = Context(container=container, caller=Caller(user=owner, sign_in_id=uuid.uuid4()), authenticated=True)
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


async def _watch_over_websocket(url: str, token: str, execution_id: uuid.UUID) -> tuple[float, int, int]:
    """Seconds to receive and parse everything over a WebSocket, lines received, messages."""
    started = time.perf_counter()
    lines = messages = 0
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"], max_size=None) as socket:  # type: ignore[list-item]
        await socket.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        subscribe = {
            "id": "1",
            "type": "subscribe",
            "payload": {"query": EVENTS, "variables": {"id": str(execution_id)}},
        }
        await socket.send(json.dumps(subscribe))
        while True:
            message = json.loads(await socket.recv())
            if message["type"] == "complete":
                break
            if message["type"] != "next" or message["payload"].get("errors"):
                raise Failed(f"subscription message: {message}")
            messages += 1
            lines += len(message["payload"]["data"]["executionEvents"].get("lines") or [])
    return time.perf_counter() - started, lines, messages


async def run() -> list[Figure]:
    """Replay 100k lines to a late watcher from Redis and from PostgreSQL; baseline: raw XRANGE."""
    # The benchmark's own database, Redis database and prefix (bench/system.py), with an API of its own.
    target = Target.from_environment()
    settings = target.settings()
    await asyncio.to_thread(migrate, settings)  # alembic runs its own event loop
    port = free_port()
    api = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, waited for at the end
        [sys.executable, "-m", "podrun.cli", "api", "--port", str(port)],
        env={**os.environ, **target.environment()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        return await _measure(settings, port)
    finally:
        api.terminate()
        api.wait()


async def _measure(settings: Settings, port: int) -> list[Figure]:
    ws_url = f"ws://127.0.0.1:{port}/graphql"
    async with Container.running(settings, "api") as container:
        async with container.users() as users:
            owner = await users.create_user(f"bench-{uuid.uuid4().hex[:12]}@example.com", "bench horse battery staple")
            token = (await users.start_session(owner, Origin(address="127.0.0.1", user_agent="bench"))).access_token
        execution_id = await _finished_run(container, owner)
        await _until_ready(f"http://127.0.0.1:{port}/readyz")
        key = container.keys.events(execution_id)
        started = time.perf_counter()
        raw = 0
        cursor = "-"
        while entries := await container.redis.xrange(key, min=cursor, count=10_000):
            # Each entry is one JSON object (streams/events.py); a batch's lines are its text split at newlines.
            decoded = [(entry.decode(), json.loads(fields[b"e"])) for entry, fields in entries]
            split = [event["text"].split("\n") if "codes" in event else [event] for _, event in decoded]
            json.dumps(split)
            raw += sum(len(lines) for lines in split)
            cursor = "(" + entries[-1][0].decode()
        raw_s = time.perf_counter() - started
        redis_ws_s, redis_ws_lines, redis_ws_messages = await _watch_over_websocket(ws_url, token, execution_id)
        redis_s, redis_lines, _ = await _watch(container, owner, execution_id)
        await container.redis.delete(key)
        archive_ws_s, archive_ws_lines, archive_ws_messages = await _watch_over_websocket(ws_url, token, execution_id)
        archive_s, archive_lines, _ = await _watch(container, owner, execution_id)
    received = {redis_ws_lines, redis_lines, archive_ws_lines, archive_lines}
    if received != {LINES} or raw != LINES + 2:
        raise Failed(f"lines received: {received}, raw {raw}")
    raw_rate = f"{raw / raw_s:,.0f} raw XRANGE + JSON"
    return [
        Figure("WebSocket, from Redis: lines/s", f"{LINES / redis_ws_s:,.0f}", raw_rate),
        Figure("WebSocket, from Redis: seconds, messages", f"{redis_ws_s:.2f} s, {redis_ws_messages}"),
        Figure("WebSocket, from PostgreSQL: lines/s", f"{LINES / archive_ws_s:,.0f}"),
        Figure("WebSocket, from PostgreSQL: seconds, messages", f"{archive_ws_s:.2f} s, {archive_ws_messages}"),
        Figure("in-process resolver, from Redis: lines/s", f"{LINES / redis_s:,.0f}"),
        Figure("in-process resolver, from PostgreSQL: lines/s", f"{LINES / archive_s:,.0f}"),
    ]


async def _until_ready(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise Failed(f"the API at {url} did not get ready")
