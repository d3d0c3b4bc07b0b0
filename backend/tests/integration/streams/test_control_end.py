"""The end of a run's control stream against real Redis: its readers wake and stop, their connections kept."""

from __future__ import annotations

import asyncio
import uuid

from podrun.redis_client import Keys, create_redis
from podrun.settings import Settings
from podrun.streams.control import ENDED_TTL_S, Cancel, ControlStream
from tests.databases import delete_keys


async def test_the_end_mark_stops_a_blocked_reader_which_keeps_its_connection() -> None:
    settings = Settings()
    prefix = f"podrun-test-control-{uuid.uuid4().hex[:8]}"
    redis = await create_redis(settings, "test")
    control = ControlStream(redis, Keys(prefix), uuid.uuid4())
    try:
        await control.send(Cancel())
        seen = []

        async def read() -> None:
            async for command in control.commands(10):
                seen.append(command)

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.1)  # past the cancel, blocked in XREAD
        await control.end()
        await asyncio.wait_for(reader, 1.0)  # it returns by itself: never cancelled
        assert seen == [Cancel()]
        assert 0 < await redis.ttl(control.key) <= ENDED_TTL_S
        # A reader cancelled inside its XREAD leaves its connection dropped (redis-py cannot know its state).
        pool = redis.connection_pool
        assert all(connection.is_connected for connection in pool._available_connections)
    finally:
        await redis.aclose()
        delete_keys(settings.redis_url, prefix)
