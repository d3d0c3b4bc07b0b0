"""Artifact downloads: the run's owner (or an admin) gets the bytes, always as an attachment, never as a page;
so does anyone with the token of a share of that run (`?share=<token>`, no sign-in), for that run's artifacts only.

Whatever a script produced is served so that a browser never renders it in Podrun's origin:
`Content-Disposition: attachment`, `nosniff`, and a CSP that allows nothing and sandboxes the document
(an SVG with a script in it stays inert even when opened directly).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote
from uuid import UUID

from litestar import Request, Response, Router, get
from litestar.datastructures import State
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from podrun.app.web_session import error_response
from podrun.container import Container
from podrun.core.errors import NotFound, PodrunError, Unauthenticated
from podrun.executions.models import Artifact
from podrun.executions.shares import Shares
from podrun.graphql.artifact_urls import ARTIFACT_ROUTE

BEARER = "bearer "
DOWNLOAD_HEADERS = {
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'none'; sandbox",
    "cache-control": "private, no-store",
    "cross-origin-resource-policy": "same-origin",
}


@get(ARTIFACT_ROUTE)
async def download_artifact(
    artifact_id: UUID, state: State, request: Request[Any, Any, Any], share: str | None = None
) -> Response[bytes]:
    """The artifact's bytes, for the owner of its run or an admin, or with the token of its run's share;
    NOT_FOUND for everyone else."""
    container: Container = state.container
    if share is not None:
        async with container.executions() as executions:
            shared = await Shares(executions).artifact(share, artifact_id)
        if shared is None:
            raise NotFound("artifact not found")
        return _attachment(shared)
    authorization = request.headers.get("authorization", "")
    if not authorization.lower().startswith(BEARER):
        raise Unauthenticated("send Authorization: Bearer <accessToken>")
    async with container.users() as users:
        caller = await users.user_for_token(authorization[len(BEARER) :].strip())
    async with container.executions() as executions:
        return _attachment(await executions.artifact_for_download(caller.user, artifact_id))


def _attachment(artifact: Artifact) -> Response[bytes]:
    disposition = f"attachment; filename=\"{artifact.name}\"; filename*=UTF-8''{quote(artifact.name)}"
    return Response(
        artifact.content,
        media_type=artifact.media_type,
        headers={**DOWNLOAD_HEADERS, "content-disposition": disposition},
    )


artifacts_router = Router(
    path="/",
    route_handlers=[download_artifact],
    exception_handlers={PodrunError: error_response, SQLAlchemyError: error_response, RedisError: error_response},
)
