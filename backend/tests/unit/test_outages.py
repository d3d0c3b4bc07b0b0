"""Which errors are outages of PostgreSQL or Redis (UNAVAILABLE to clients) and which are bugs."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from podrun.outages import unavailable_service


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
        (ValueError("a bug"), None),
    ],
)
def test_outages_are_told_from_bugs(error: BaseException, service: str | None) -> None:
    assert unavailable_service(error) == service
