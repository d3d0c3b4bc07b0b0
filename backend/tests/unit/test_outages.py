"""Which errors are outages of PostgreSQL or Redis (UNAVAILABLE to clients) and which are bugs."""

from __future__ import annotations

import pytest
from asyncpg.exceptions import AdminShutdownError, ConnectionDoesNotExistError, UniqueViolationError
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from podrun.outages import unavailable_service, until_reachable


def _caused_by(cause: BaseException) -> RuntimeError:
    try:
        raise RuntimeError("while doing something") from cause
    except RuntimeError as error:
        return error


@pytest.mark.parametrize(
    ("error", "service"),
    [
        (RedisConnectionError("refused"), "redis"),
        (OperationalError("SELECT 1", {}, Exception("gone")), "database"),
        (PoolTimeoutError("QueuePool limit of size 5 overflow 10 reached"), "database"),
        (_caused_by(PoolTimeoutError("QueuePool limit reached")), "database"),
        # Raised straight by asyncpg (a COPY on the driver), without SQLAlchemy's wrapping.
        (ConnectionDoesNotExistError("connection was closed in the middle of operation"), "database"),
        (_caused_by(AdminShutdownError("terminating connection due to administrator command")), "database"),
        (UniqueViolationError("duplicate key value"), None),
        (ValueError("a bug"), None),
    ],
)
def test_outages_are_told_from_bugs(error: BaseException, service: str | None) -> None:
    assert unavailable_service(error) == service


async def test_until_reachable_waits_out_an_outage_and_lets_a_bug_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("podrun.outages.RETRY_FIRST_DELAY_S", 0.001)
    tries: list[int] = []

    async def flaky() -> str:
        tries.append(len(tries))
        if len(tries) < 3:
            raise RedisConnectionError("refused")
        return "done"

    assert await until_reachable("flaky", flaky) == "done"
    assert tries == [0, 1, 2]

    async def buggy() -> str:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        await until_reachable("buggy", buggy)
