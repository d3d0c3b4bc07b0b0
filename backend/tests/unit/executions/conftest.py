"""The real test PostgreSQL and Redis for the pump and lifecycle tests (the sandbox is the only fake)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from podrun.container import Container
from podrun.db.migrate import migrate
from podrun.redis_client import Keys
from podrun.settings import Settings


@pytest.fixture(scope="module")
async def container() -> AsyncIterator[Container]:
    settings = Settings()
    await asyncio.to_thread(migrate, settings)  # alembic runs its own event loop
    # The CLI's container: no runner, no metrics server, no dependency watch; the tests bring the sandbox.
    async with Container.running(settings, "cli") as running:
        yield running


@pytest.fixture(scope="module")
async def redis() -> AsyncIterator[Redis]:
    """The test Redis alone, for what needs no database (the pump)."""
    client = Redis.from_url(Settings().redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def keys() -> Keys:
    return Keys(Settings().redis_prefix)
