"""Where artifacts are downloaded: one route, named once for the API that serves it and the types that link to it."""

from __future__ import annotations

from urllib.parse import urlencode

ARTIFACT_ROUTE = "/artifacts/{artifact_id:uuid}"


def artifact_url(artifact_id: str, share_token: str | None = None) -> str:
    """The download path of an artifact, relative to the API's base URL; with a share's token, one that needs
    no sign-in (app/artifacts.py)."""
    path = f"/artifacts/{artifact_id}"
    return path if share_token is None else f"{path}?{urlencode({'share': share_token})}"
