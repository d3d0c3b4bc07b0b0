"""The API process: Litestar with Strawberry at /graphql, health endpoints, browser sessions and the web client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from litestar import Litestar, MediaType, Response, get
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import File
from litestar.types import ControllerRouterHandler
from sqlalchemy import text
from strawberry.exceptions import ConnectionRejectionError
from strawberry.litestar import make_graphql_controller
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from podrun.accounts.web_session import web_session_router
from podrun.db.base import database_config
from podrun.errors import Unauthenticated
from podrun.graphql.context import Context, Services
from podrun.graphql.schema import schema
from podrun.logging import configure_logging
from podrun.redis_client import Keys, create_redis
from podrun.runners import build_runner
from podrun.runners.catalog import RuntimeCatalog
from podrun.settings import Settings, get_settings
from podrun.streams.hub import StreamHub


@get("/healthz", media_type=MediaType.TEXT, sync_to_thread=False)
def healthz() -> str:
    """The process is up."""
    return "ok"


@get("/readyz", media_type=MediaType.JSON)
async def readyz(state: State) -> Response[dict[str, str]]:
    """PostgreSQL and Redis are reachable."""
    services: Services = state.services
    checks: dict[str, str] = {}
    try:
        async with services.db.get_engine().connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["postgres"] = "ok"
    except Exception:
        checks["postgres"] = "unreachable"
    try:
        await services.redis.ping()
        checks["redis"] = "ok"
    except Exception:
        checks["redis"] = "unreachable"
    ready = all(value == "ok" for value in checks.values())
    return Response(checks, status_code=200 if ready else 503)


def web_client(web_dir: Path) -> list[ControllerRouterHandler]:
    """The built web client: its files, and index.html for any other path so deep links open the app."""
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


def create_app(settings: Settings | None = None) -> Litestar:
    """The ASGI app."""
    settings = settings or get_settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        redis = await create_redis(settings, "api")
        hub = StreamHub(redis, Keys(settings.redis_prefix))
        db = database_config(settings)
        runner = build_runner(settings)
        catalog = RuntimeCatalog(runner.runtimes(), runner.isolation())
        app.state.services = Services(settings=settings, db=db, redis=redis, hub=hub, catalog=catalog)
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()
            await redis.aclose()
            await db.get_engine().dispose()

    async def context_getter(state: State) -> Context:
        return Context(services=state.services)

    base = make_graphql_controller(
        schema,
        path="/graphql",
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        context_getter=context_getter,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        connection_init_wait_timeout=timedelta(seconds=10),
    )

    class GraphQLController(base):  # type: ignore[valid-type,misc]
        async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, Any] | None:
            """Authenticate the socket from `connection_init`; bad credentials close it (4403)."""
            try:
                await context.user()
                return cast(UnsetType, UNSET)
            except Unauthenticated as error:
                raise ConnectionRejectionError({"code": error.code, "message": error.message}) from error

    handlers: list[ControllerRouterHandler] = [GraphQLController, healthz, readyz, web_session_router]
    if (settings.web_dir / "index.html").is_file():
        handlers.extend(web_client(settings.web_dir))
    # logging_config=None: structlog (configure_logging above) owns logging, not Litestar's defaults.
    return Litestar(route_handlers=handlers, lifespan=[lifespan], logging_config=None, debug=False)
