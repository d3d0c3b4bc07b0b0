"""Browser sessions: the refresh token lives in an httpOnly cookie, the access token only in the page's memory.

The web client signs in here instead of through the `login` mutation, so that JavaScript never sees a
long-lived token. The cookie is `SameSite=Strict` and scoped to `/auth`; every endpoint also requires
the `X-Podrun-CSRF` header, which a cross-site form cannot send and a cross-site script could only
send after a CORS preflight that this API never answers. Each sign-in here is a sign-in record
(accounts/sign_ins.py): the cookie rotates at every refresh, and signing out ends the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from litestar import Request, Response, Router, delete, post
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, State
from litestar.handlers import BaseRouteHandler
from litestar.params import JSONBody
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from podrun.accounts.models import User
from podrun.accounts.service import Session
from podrun.container import Container
from podrun.core.errors import Forbidden, PodrunError, RateLimited, Unauthenticated, Unavailable
from podrun.graphql.context import origin_of
from podrun.outages import unavailable_service
from podrun.settings import Settings

REFRESH_COOKIE = "podrun_refresh"
CSRF_HEADER = "x-podrun-csrf"
COOKIE_PATH = "/auth"

log = structlog.get_logger(__name__)

_STATUS = {
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "BAD_USER_INPUT": 400,
    "CONFLICT": 409,
    "RATE_LIMITED": 429,
    "UNAVAILABLE": 503,
}


@dataclass
class Credentials:
    """An email and password to sign in with."""

    email: str
    password: str


def require_csrf_header(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Refuse requests without the custom header a cross-site form cannot send."""
    if connection.headers.get(CSRF_HEADER) != "1":
        raise Forbidden(f"missing the {CSRF_HEADER} header")


def _user_json(user: User) -> dict[str, str]:
    return {"id": str(user.id), "email": user.email, "role": user.role.value, "createdAt": user.created_at.isoformat()}


def _session_response(settings: Settings, session: Session) -> Response[dict[str, Any]]:
    cookie = Cookie(
        key=REFRESH_COOKIE,
        value=session.refresh_token,
        path=COOKIE_PATH,
        max_age=settings.auth.refresh_token_ttl_s,
        httponly=True,
        samesite="strict",
        secure=settings.mode == "production",
    )
    body = {
        "accessToken": session.access_token,
        "expiresInMs": settings.auth.access_token_ttl_s * 1000,
        "user": _user_json(session.user),
    }
    return Response(body, cookies=[cookie], headers={"cache-control": "no-store"})


def error_response(request: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    """The same code and message GraphQL would report, with a matching HTTP status."""
    if not isinstance(error, PodrunError):
        service = unavailable_service(error)
        if service is None:
            log.error("unexpected error in a web session request", path=request.url.path, exc_info=error)
            return Response({"message": "Internal server error", "code": "INTERNAL"}, status_code=500)
        error = Unavailable(f"the {service} is unavailable for the moment; try again shortly")
    retry_after_ms = error.retry_after_ms if isinstance(error, (RateLimited, Unavailable)) else None
    headers = {"retry-after": str(retry_after_ms // 1000 + 1)} if retry_after_ms is not None else None
    return Response(
        {"message": error.message, **error.extensions},
        status_code=_STATUS.get(error.code, 500),
        headers=headers,
    )


@post("/session", status_code=200)
async def sign_in(
    state: State, request: Request[Any, Any, Any], data: JSONBody[Credentials]
) -> Response[dict[str, Any]]:
    """Check the credentials, set the refresh cookie and answer with an access token."""
    container: Container = state.container
    async with container.users() as users:
        session = await users.sign_in(data.email, data.password, origin_of(request, container.settings))
    log.info("web session started", user_id=str(session.user.id), sign_in_id=str(session.sign_in_id))
    return _session_response(container.settings, session)


@post("/refresh", status_code=200)
async def refresh(state: State, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Trade the refresh cookie for a new access token, rotating the cookie."""
    container: Container = state.container
    token = request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise Unauthenticated("not signed in")
    async with container.users() as users:
        session = await users.refresh(token)
    return _session_response(container.settings, session)


@delete("/session", status_code=200)
async def sign_out(state: State, request: Request[Any, Any, Any]) -> Response[dict[str, bool]]:
    """End the cookie's sign-in on the server (its tokens stop working, its sockets close) and drop the cookie."""
    container: Container = state.container
    token = request.cookies.get(REFRESH_COOKIE)
    if token:
        async with container.users() as users:
            await users.sign_out_refresh_token(token)
    response = Response({"signedOut": True}, headers={"cache-control": "no-store"})
    response.delete_cookie(REFRESH_COOKIE, path=COOKIE_PATH)
    return response


web_session_router = Router(
    path=COOKIE_PATH,
    route_handlers=[sign_in, refresh, sign_out],
    guards=[require_csrf_header],
    # Domain errors, and outages of PostgreSQL or Redis (anything else of theirs is masked).
    exception_handlers={PodrunError: error_response, SQLAlchemyError: error_response, RedisError: error_response},
)
