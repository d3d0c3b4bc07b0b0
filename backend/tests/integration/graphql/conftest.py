"""The resolvers in-process against the real PostgreSQL and Redis: one API container per test module."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from podrun.container import Container
from podrun.db.migrate import migrate
from podrun.settings import Settings


@pytest.fixture(scope="module")
async def container() -> AsyncIterator[Container]:
    settings = Settings()
    await asyncio.to_thread(migrate, settings)  # alembic runs its own event loop
    async with Container.running(settings, "api") as running:
        yield running
