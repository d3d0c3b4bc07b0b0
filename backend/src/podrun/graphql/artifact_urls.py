"""Where artifacts are downloaded: one route, named once for the API that serves it and the types that link to it."""

from __future__ import annotations

ARTIFACT_ROUTE = "/artifacts/{artifact_id:uuid}"


def artifact_url(artifact_id: str) -> str:
    """The download path of an artifact, relative to the API's base URL."""
    return f"/artifacts/{artifact_id}"
