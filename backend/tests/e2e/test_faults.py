"""Redis, PostgreSQL, a worker or the API failing while a run prints numbered lines: nothing lost or repeated.

These tests kill and restart services, so they start their own redis-server and PostgreSQL cluster
(tests/services.py) on free ports; the machine's shared ones are never touched. A watcher follows
the run the way a careful client does — after an error or a dropped socket it subscribes again
after the last seq it holds — and must see every line exactly once, as must the archive and a late
subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from podrun.settings import Settings
from tests.client import GraphQLClient, GraphQLFailure
from tests.databases import fresh_database
from tests.e2e.helpers import assert_consecutive, execution, flatten, submit, wait_for_status
from tests.e2e.test_worker_crash import runs_the_sandbox
from tests.processes import PodrunDeployment, wait_ready
from tests.services import OwnPostgres, OwnRedis

LINES = 40
PAUSE_S = 0.25
# Prints LINES numbered lines, one every PAUSE_S: the faults happen in the middle.
COUNTING = f"import time\nfor i in range({LINES}):\n    print(f'line {{i}}', flush=True)\n    time.sleep({PAUSE_S})\n"
EXPECTED = [f"line {i}" for i in range(LINES)]
EVENTS = """
subscription($id: ID!, $after: Int) {
  executionEvents(id: $id, afterSeq: $after) {
    __typename
    ... on OutputChunk { lines { seq stream text partial } }
    ... on StatusChange { seq status }
  }
}
"""
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "ERROR"}


@dataclass
class Faults:
    """A deployment on services of its own, which the tests break."""

    redis: OwnRedis
    postgres: OwnPostgres
    deployment: PodrunDeployment


@pytest.fixture(scope="module")
def faults() -> Iterator[Faults]:
    redis = OwnRedis()
    redis.start()
    postgres = OwnPostgres()
    postgres.start()
    database_url = postgres.url("podrun_faults_test")
    fresh_database(Settings(database_url=database_url))
    deployment = PodrunDeployment(
        "faults", {"PODRUN_DATABASE_URL": database_url, "PODRUN_REDIS_URL": redis.url, "PODRUN_REDIS_PREFIX": "faults"}
    )
    deployment.worker()
    try:
        wait_ready(deployment.base_url, deployment.api)
        yield Faults(redis, postgres, deployment)
    finally:
        deployment.stop()
        redis.kill()
        postgres.remove()


@pytest.fixture
async def client(faults: Faults) -> GraphQLClient:
    return await GraphQLClient(faults.deployment.base_url).register()


class Watcher:
    """Follows a run through faults, resubscribing after the last seq it holds."""

    def __init__(self, client: GraphQLClient, execution_id: str) -> None:
        self.client = client
        self.execution_id = execution_id
        self.events: list[dict[str, Any]] = []
        self.interruptions: list[str] = []

    @property
    def ended(self) -> bool:
        return bool(self.events) and self.events[-1]["kind"] == "status" and self.events[-1]["status"] in TERMINAL

    async def follow(self) -> list[dict[str, Any]]:
        while not self.ended:
            after = self.events[-1]["seq"] if self.events else 0
            try:
                async for data in self.client.subscribe(EVENTS, {"id": self.execution_id, "after": after}):
                    self.events.extend(flatten(data["executionEvents"]))
            except Exception as exc:  # an UNAVAILABLE error, a dropped socket, a refused connection
                self.interruptions.append(type(exc).__name__)
                await asyncio.sleep(0.3)
        return self.events


async def until_line(watcher: Watcher, text: str) -> None:
    while not any(event.get("text") == text for event in watcher.events):  # noqa: ASYNC110 - polling the watcher
        await asyncio.sleep(0.02)


async def ended(client: GraphQLClient, execution_id: str) -> dict[str, Any]:
    """The run's row once it has ended, asking again while the API cannot answer."""
    while True:
        with contextlib.suppress(Exception):
            row = await execution(client, execution_id)
            if row["status"] in TERMINAL:
                return row
        await asyncio.sleep(0.3)


async def assert_every_line_once(
    client: GraphQLClient, execution_id: str, watched: list[dict[str, Any]], status: str, expected: list[str]
) -> None:
    for events in (watched, [event async for event in _late(client, execution_id)]):
        assert_consecutive(events)
        assert [e["text"] for e in events if e["kind"] == "line"] == expected
        assert [e["status"] for e in events if e["kind"] == "status"] == ["STARTING", "RUNNING", status]
    row = await ended(client, execution_id)
    assert (row["status"], row["stdout"]) == (status, "".join(f"{line}\n" for line in expected))


async def _late(client: GraphQLClient, execution_id: str) -> AsyncIterator[dict[str, Any]]:
    async for data in client.subscribe(EVENTS, {"id": execution_id, "after": 0}):
        for event in flatten(data["executionEvents"]):
            yield event


async def start_counting(client: GraphQLClient) -> tuple[str, Watcher, asyncio.Task[list[dict[str, Any]]]]:
    execution_id = await submit(client, COUNTING, limits={"wallTimeMs": 60_000})
    watcher = Watcher(client, execution_id)
    following = asyncio.create_task(watcher.follow())
    await asyncio.wait_for(until_line(watcher, "line 3"), 30)
    return execution_id, watcher, following


async def test_redis_restarted_empty_mid_run(faults: Faults, client: GraphQLClient) -> None:
    execution_id, watcher, following = await start_counting(client)
    faults.redis.kill()
    faults.redis.start()
    events = await asyncio.wait_for(following, 60)
    assert watcher.interruptions, "the watcher's subscription must have ended when Redis went away"
    await assert_every_line_once(client, execution_id, events, "SUCCEEDED", EXPECTED)


async def test_redis_down_for_twenty_seconds_mid_run(faults: Faults, client: GraphQLClient) -> None:
    execution_id, _, following = await start_counting(client)
    faults.redis.kill()
    await asyncio.sleep(20)
    faults.redis.start()
    events = await asyncio.wait_for(following, 90)
    await assert_every_line_once(client, execution_id, events, "SUCCEEDED", EXPECTED)


async def test_a_run_submitted_while_redis_is_down_is_refused_or_run_later(
    faults: Faults, client: GraphQLClient
) -> None:
    faults.redis.kill()
    refusal: GraphQLFailure | None = None
    try:
        execution_id: str | None = await submit(client, "print('submitted during the outage')")
    except GraphQLFailure as failure:
        refusal, execution_id = failure, None
    finally:
        faults.redis.start()
    if refusal is not None:
        assert (refusal.code, refusal.errors[0]["extensions"]["retryAfterMs"] > 0) == ("UNAVAILABLE", True)
    rows = (await client.execute("{ executions(first: 5) { edges { node { id } } } }"))["executions"]["edges"]
    if execution_id is None:
        assert rows == []  # refused: nothing was stored
    else:
        # Stored: the workers' sweep enqueues it once Redis is back, and it runs once.
        assert [row["node"]["id"] for row in rows] == [execution_id]
        row = await asyncio.wait_for(ended(client, execution_id), 60)
        assert (row["status"], row["stdout"]) == ("SUCCEEDED", "submitted during the outage\n")


async def test_postgres_restarted_mid_run(faults: Faults, client: GraphQLClient) -> None:
    execution_id, _, following = await start_counting(client)
    faults.postgres.stop()
    await asyncio.sleep(5)
    faults.postgres.start()
    events = await asyncio.wait_for(following, 60)
    await assert_every_line_once(client, execution_id, events, "SUCCEEDED", EXPECTED)


async def test_api_killed_mid_run(faults: Faults, client: GraphQLClient) -> None:
    execution_id, watcher, following = await start_counting(client)
    faults.deployment.api.kill()
    await asyncio.sleep(1)
    await asyncio.to_thread(faults.deployment.restart_api)
    events = await asyncio.wait_for(following, 60)
    assert watcher.interruptions, "the watcher's socket must have dropped with the API"
    await assert_every_line_once(client, execution_id, events, "SUCCEEDED", EXPECTED)


async def test_worker_killed_mid_run(faults: Faults, client: GraphQLClient) -> None:
    execution_id, watcher, following = await start_counting(client)
    [holder] = [w for w in faults.deployment.live_workers() if runs_the_sandbox(w.process.pid, execution_id)]
    holder.kill()
    printed = [e["text"] for e in watcher.events if e["kind"] == "line"]
    faults.deployment.worker()  # its watchdog ends the orphaned run once the heartbeat TTL has passed
    events = await asyncio.wait_for(following, 60)
    lines = [e["text"] for e in events if e["kind"] == "line"]
    assert lines[: len(printed)] == printed
    assert lines == EXPECTED[: len(lines)]
    await assert_every_line_once(client, execution_id, events, "ERROR", lines)
    await wait_for_status(client, execution_id, "ERROR")
