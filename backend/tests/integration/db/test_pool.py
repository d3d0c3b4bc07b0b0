"""The pool against real PostgreSQL: a connection the server closed is replaced at checkout, without a ping."""

from __future__ import annotations

import asyncio

import asyncpg
from advanced_alchemy.config import SQLAlchemyAsyncConfig
from sqlalchemy import make_url, text

from podrun.db.base import database_config
from podrun.settings import Settings


async def _backend_pid(config: SQLAlchemyAsyncConfig) -> int:
    async with config.get_session() as session:
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_connection_the_server_closed_is_replaced_at_checkout() -> None:
    # Any database will do: the test asks for nothing but connections.
    url = make_url(Settings().database_url).set(database="postgres")
    config = database_config(Settings(database_url=url.render_as_string(hide_password=False)))
    try:
        first = await _backend_pid(config)
        assert await _backend_pid(config) == first  # pooled: the same connection again
        admin = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", first)
        finally:
            await admin.close()
        await asyncio.sleep(0.2)  # the loop reads the server's goodbye
        assert await _backend_pid(config) != first  # no error: a fresh connection took its place
    finally:
        await config.get_engine().dispose()
