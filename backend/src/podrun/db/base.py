"""Database configuration shared by the API, the worker and the CLI."""

from __future__ import annotations

from typing import Any

from advanced_alchemy.base import orm_registry
from advanced_alchemy.config import AsyncSessionConfig, SQLAlchemyAsyncConfig
from sqlalchemy import MetaData, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from podrun.settings import Settings

metadata: MetaData = orm_registry.metadata


def database_config(settings: Settings) -> SQLAlchemyAsyncConfig:
    """The Advanced Alchemy config: one engine per process, sessions per unit of work."""
    config = SQLAlchemyAsyncConfig(
        connection_string=settings.database_url,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        create_all=False,
    )
    # Pool events follow the engine's pool through `dispose()` (a recreated pool keeps its listeners).
    event.listen(config.get_engine().sync_engine, "checkout", _drop_closed)
    return config


def _drop_closed(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection) -> None:
    """Replace a pooled connection the server has closed (PostgreSQL restarted, the connection was killed).

    Instead of `pool_pre_ping`, which costs three round trips (BEGIN, a query, ROLLBACK) at every checkout: asyncpg
    sees the server close the socket on the event loop, so asking it costs nothing. A connection lost in a way that
    only a query reveals fails that one query as a disconnect, which invalidates the pool (the API answers
    UNAVAILABLE, the worker's step is retried by `until_reachable`).
    """
    is_closed = getattr(record.driver_connection, "is_closed", None)
    if is_closed is not None and is_closed():
        raise DisconnectionError("the server closed this pooled connection")  # the pool retries with a fresh one
