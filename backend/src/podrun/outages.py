"""Telling an outage of PostgreSQL or Redis from a bug: what is retried, and what clients see as UNAVAILABLE."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

import structlog
from asyncpg.exceptions import AdminShutdownError, CannotConnectNowError, CrashShutdownError, PostgresConnectionError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from podrun.core.backoff import Backoff

log = structlog.get_logger(__name__)

RETRY_FIRST_DELAY_S = 0.1
RETRY_MAX_DELAY_S = 5.0

T = TypeVar("T")

Service = Literal["database", "redis"]

# asyncpg's own errors for a connection lost or refused, from calls made on the driver itself (the archive's COPY),
# which SQLAlchemy does not wrap; a lost connection is a PostgresConnectionError (class 08), a restart class 57P.
_ASYNCPG_LOST = (PostgresConnectionError, AdminShutdownError, CrashShutdownError, CannotConnectNowError)


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
        if isinstance(current, _ASYNCPG_LOST):
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


async def until_reachable(what: str, step: Callable[[], Awaitable[T]]) -> T:
    """Do `step`, waiting out an outage of PostgreSQL or Redis with growing pauses; other errors go through.

    `step` opens its own session (or just calls Redis), so a try that failed leaves nothing to roll back.
    """
    backoff = Backoff(RETRY_FIRST_DELAY_S, RETRY_MAX_DELAY_S)
    while True:
        try:
            return await step()
        except Exception as exc:
            service = unavailable_service(exc)
            if service is None:
                raise
            log.warning("service unavailable; retrying", service=service, step=what, in_s=backoff.delay_s)
            await backoff.sleep()
