"""Alembic environment: migrations run against `Settings.database_url` with the asyncpg driver."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import podrun.accounts.models
import podrun.executions.models
import podrun.kernels.models
import podrun.policy.models
import podrun.scripts.models
import podrun.tools.models  # noqa: F401 - registers the tables on the metadata
from podrun.db.base import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_async_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


asyncio.run(_run_online())
