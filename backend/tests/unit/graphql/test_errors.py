"""Every GraphQL error carries a contract code; unexpected ones are masked for the client and logged."""

from __future__ import annotations

import strawberry
from structlog.testing import capture_logs

from podrun.core.errors import NotFound, RateLimited
from podrun.graphql.errors import INTERNAL_MESSAGE, ErrorCodes


@strawberry.type
class Query:
    @strawberry.field
    def missing(self) -> str:
        raise NotFound("execution not found")

    @strawberry.field
    def busy(self) -> str:
        raise RateLimited("too many submissions", retry_after_ms=1500)

    @strawberry.field
    def broken(self) -> str:
        raise RuntimeError("database password is hunter2")


schema = strawberry.Schema(query=Query, extensions=[ErrorCodes])


async def test_domain_errors_keep_their_message_and_code() -> None:
    result = await schema.execute("{ missing }")
    assert result.errors is not None
    assert [(e.message, e.extensions) for e in result.errors] == [("execution not found", {"code": "NOT_FOUND"})]


async def test_rate_limited_says_when_to_retry() -> None:
    result = await schema.execute("{ busy }")
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "RATE_LIMITED", "retryAfterMs": 1500}


async def test_unexpected_errors_are_masked_and_logged() -> None:
    with capture_logs() as logs:
        result = await schema.execute("{ broken }")
    assert result.errors is not None
    assert [(e.message, e.extensions) for e in result.errors] == [(INTERNAL_MESSAGE, {"code": "INTERNAL"})]
    assert [entry["event"] for entry in logs] == ["unexpected error in a resolver"]
    assert "hunter2" not in logs[0]["event"]


async def test_invalid_queries_are_bad_user_input() -> None:
    result = await schema.execute("{ nosuchfield }")
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "BAD_USER_INPUT"}
