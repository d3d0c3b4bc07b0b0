"""The API process: Litestar with Strawberry at /graphql, health endpoints, browser sessions and the web client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, ClassVar, cast

from litestar import Litestar, Response
from litestar.background_tasks import BackgroundTasks
from litestar.datastructures import State
from litestar.di import Provide
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from litestar.types import ControllerRouterHandler, Dependencies
from strawberry.exceptions import ConnectionRejectionError
from strawberry.litestar import make_graphql_controller
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from podrun.app.artifacts import artifacts_router
from podrun.app.graphql_media import GraphQLResponseMedia, encode_json
from podrun.app.health import healthz, readyz
from podrun.app.metrics import HTTP_METRICS, metrics_routes
from podrun.app.revocations import SocketRevocations
from podrun.app.web_client import web_client
from podrun.app.web_session import web_session_router
from podrun.container import Container
from podrun.core.errors import Unauthenticated
from podrun.graphql.context import Context
from podrun.graphql.schema import build_schema
from podrun.graphql.snapshots import StatusSnapshots
from podrun.graphql.sockets import LimitedSocket
from podrun.logging import configure_logging
from podrun.observability import tracing
from podrun.settings import Settings, get_settings, warn_of_unknown_variables


def _blank_response() -> Response[dict[str, Any]]:
    """The response a GraphQL operation's resolvers may add headers and cookies to."""
    return Response({}, background=BackgroundTasks([]))


def create_app(settings: Settings | None = None) -> Litestar:
    """The ASGI app."""
    settings = settings or get_settings()
    configure_logging(settings)
    warn_of_unknown_variables()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with Container.running(settings, "api") as container:
            app.state.container = container
            app.state.revocations = SocketRevocations(container.redis, container.keys)
            await app.state.revocations.start()
            try:
                yield
            finally:
                await app.state.revocations.stop()

    snapshots: StatusSnapshots[Any] = StatusSnapshots()

    async def context_getter(state: State) -> Context:
        return Context(container=state.container, snapshots=snapshots)

    base = make_graphql_controller(
        build_schema(settings),
        path="/graphql",
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        context_getter=context_getter,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        connection_init_wait_timeout=timedelta(seconds=10),
        max_subscriptions_per_connection=settings.graphql.subscriptions_per_socket,
    )

    socket_handler = LimitedSocket.with_settings(settings.graphql)

    class GraphQLController(GraphQLResponseMedia, base):  # type: ignore[valid-type,misc]
        graphql_transport_ws_handler_class = socket_handler
        # Strawberry makes each request's response object in a worker thread (a thread hop per operation).
        dependencies: ClassVar[Dependencies] = {
            **base.dependencies,
            "response": Provide(_blank_response, sync_to_thread=False),
        }

        def encode_json(self, data: object) -> str:
            """Every response and WebSocket message (graphql_media.encode_json)."""
            return encode_json(data)

        async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, Any] | None:
            """Authenticate the socket from `connection_init`; bad credentials close it (4403).

            A signed-in socket is closed as well (4403) once its sign-in is revoked (app/revocations.py).
            """
            try:
                await context.user()
            except Unauthenticated as error:
                raise ConnectionRejectionError({"code": error.code, "message": error.message}) from error
            if context.sign_in_id is not None and context.websocket is not None:
                context.websocket.app.state.revocations.watch(context.sign_in_id, context.websocket)
            return cast(UnsetType, UNSET)

    handlers: list[ControllerRouterHandler] = [GraphQLController, healthz, readyz, web_session_router, artifacts_router]
    handlers.extend(metrics_routes(settings))
    if (settings.web_dir / "index.html").is_file():
        handlers.extend(web_client(settings.web_dir))
    # logging_config=None: structlog (configure_logging above) owns logging, not Litestar's defaults.
    return Litestar(
        route_handlers=handlers,
        lifespan=[lifespan],
        middleware=[HTTP_METRICS.middleware],
        plugins=[OpenTelemetryPlugin(OpenTelemetryConfig())] if tracing.enabled() else [],
        logging_config=None,
        debug=False,
    )
