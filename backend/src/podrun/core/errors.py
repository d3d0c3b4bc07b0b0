"""Domain errors. Services raise these; GraphQL turns them into `extensions.code` (graphql/errors.py).

Each error carries its GraphQL `extensions`, which graphql-core copies onto the error it reports.
Messages are shown to clients: they say what is wrong, never how the server is built.
"""

from __future__ import annotations

from typing import Any


class PodrunError(Exception):
    """Base of every error a client is meant to see."""

    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def extensions(self) -> dict[str, Any]:
        """What GraphQL reports under `extensions`."""
        return {"code": self.code}


class Unauthenticated(PodrunError):
    """No valid credentials."""

    code = "UNAUTHENTICATED"


class Forbidden(PodrunError):
    """Valid credentials, but not allowed."""

    code = "FORBIDDEN"


class NotFound(PodrunError):
    """Missing, or not visible to this user (the two are indistinguishable on purpose)."""

    code = "NOT_FOUND"


class BadUserInput(PodrunError):
    """The request is invalid; the message says why. For programs, `extensions` may say more: `field`, the input
    to blame, and `reason`: STORAGE_FULL (delete runs first), OUTPUT_BUDGET (page with a smaller `first`, or stream
    executionEvents)."""

    code = "BAD_USER_INPUT"

    def __init__(self, message: str, *, reason: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field

    @property
    def extensions(self) -> dict[str, Any]:
        """The code, and the field at fault and the reason when known."""
        extra = {"field": self.field, "reason": self.reason}
        return {"code": self.code} | {key: value for key, value in extra.items() if value is not None}


class Conflict(PodrunError):
    """The request clashes with the current state (email taken, run already finished)."""

    code = "CONFLICT"


class RateLimited(PodrunError):
    """Too many requests; retry after `retry_after_ms`."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after_ms: int) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms

    @property
    def extensions(self) -> dict[str, Any]:
        """Also tells when to retry."""
        return {"code": self.code, "retryAfterMs": self.retry_after_ms}


class Unavailable(PodrunError):
    """A service Podrun needs (PostgreSQL, Redis) is unreachable for now; retry after `retry_after_ms`.

    Added to the contract's codes: clients resubscribe (with afterSeq) or retry the request.
    """

    code = "UNAVAILABLE"

    def __init__(self, message: str, retry_after_ms: int = 1000) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms

    @property
    def extensions(self) -> dict[str, Any]:
        """Also tells when to retry."""
        return {"code": self.code, "retryAfterMs": self.retry_after_ms}
