"""The built web client: its files, and index.html for any other path so deep links open the app."""

from __future__ import annotations

from pathlib import Path

from litestar import get
from litestar.params import FromPath
from litestar.response import File
from litestar.types import ControllerRouterHandler


def web_client(web_dir: Path) -> list[ControllerRouterHandler]:
    """Handlers serving the web client built into `web_dir`."""
    root = web_dir.resolve()

    def spa() -> File:
        return File(
            root / "index.html",
            filename="index.html",
            content_disposition_type="inline",
            headers={"cache-control": "no-cache"},
        )

    @get("/", include_in_schema=False, sync_to_thread=False)
    def index() -> File:
        return spa()

    @get("/{path:path}", include_in_schema=False, sync_to_thread=False)
    def page(path: FromPath[str]) -> File:
        candidate = (root / path.lstrip("/")).resolve()
        if candidate != root and candidate.is_relative_to(root) and candidate.is_file():
            # Vite puts a content hash in every name under _app/immutable, so those never change.
            immutable = candidate.is_relative_to(root / "_app" / "immutable")
            cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
            return File(
                candidate, filename=candidate.name, content_disposition_type="inline", headers={"cache-control": cache}
            )
        return spa()

    return [index, page]
