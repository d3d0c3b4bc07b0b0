"""Telling an outage of PostgreSQL or Redis from a bug: what is retried, and what clients see as UNAVAILABLE."""

from __future__ import annotations

from typing import Literal

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

Service = Literal["database", "redis"]


def unavailable_service(error: BaseException) -> Service | None:
    """The service whose outage caused `error` (looking through its causes), or None for anything else."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (RedisConnectionError, RedisTimeoutError)):
            return "redis"
        # PoolTimeoutError: every pooled connection stayed busy for the pool's timeout (an overloaded database).
        if isinstance(current, (OperationalError, InterfaceError, PoolTimeoutError)) or (
            isinstance(current, DBAPIError) and current.connection_invalidated
        ):
            return "database"
        if isinstance(current, (ConnectionError, TimeoutError, OSError)) and _from_asyncpg(current):
            return "database"
        current = current.__cause__ or current.__context__
    return None


def _from_asyncpg(error: BaseException) -> bool:
    # asyncpg raises plain OSError/ConnectionError when it cannot connect; its frames say where it came from.
    traceback = error.__traceback__
    while traceback is not None:
        if "asyncpg" in traceback.tb_frame.f_code.co_filename:
            return True
        traceback = traceback.tb_next
    return False
