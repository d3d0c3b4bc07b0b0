"""However many subscriptions an API process serves, it holds a bounded number of Redis connections."""

from __future__ import annotations

import asyncio

import redis

from podrun.settings import Settings
from tests.client import EVENTS, GraphQLClient
from tests.e2e.conftest import RunningPodrun
from tests.e2e.helpers import submit, wait_for_status

SUBSCRIPTIONS = 60


def api_connections(settings: Settings, pid: int) -> int:
    """Connections the API process holds (create_redis names them after the process)."""
    clients = redis.Redis.from_url(settings.redis_url).client_list()
    return sum(1 for client in clients if client["name"] == f"{settings.redis_prefix}-api-{pid}")


async def test_many_subscriptions_share_a_bounded_pool(
    alice: GraphQLClient, settings: Settings, podrun_processes: RunningPodrun
) -> None:
    ids = [
        await submit(alice, "import time\nprint('up', flush=True)\ntime.sleep(4)\nprint('done')\n") for _ in range(3)
    ]
    for execution_id in ids:
        await wait_for_status(alice, execution_id, "RUNNING")
    first_lines: list[asyncio.Event] = [asyncio.Event() for _ in range(SUBSCRIPTIONS)]
    received: list[list[str]] = [[] for _ in range(SUBSCRIPTIONS)]

    async def watch(index: int) -> None:
        async for data in alice.subscribe(EVENTS, {"id": ids[index % len(ids)], "after": 0}):
            event = data["executionEvents"]
            if event["__typename"] == "OutputChunk":
                received[index].extend(line["text"] for line in event["lines"])
                first_lines[index].set()

    watchers = [asyncio.create_task(watch(index)) for index in range(SUBSCRIPTIONS)]
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in first_lines)), 30)
    during = api_connections(settings, podrun_processes.api.process.pid)
    await asyncio.wait_for(asyncio.gather(*watchers), 60)
    assert all(lines == ["up", "done"] for lines in received)
    assert 1 <= during <= settings.redis_max_connections < SUBSCRIPTIONS
