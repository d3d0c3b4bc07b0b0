"""Health endpoints for probes: the process is up; PostgreSQL and Redis are reachable."""

from __future__ import annotations

from litestar import MediaType, Response, get
from litestar.datastructures import State
from sqlalchemy import text

from podrun.container import Container


@get("/healthz", media_type=MediaType.TEXT, sync_to_thread=False)
def healthz() -> str:
    """The process is up."""
    return "ok"


@get("/readyz", media_type=MediaType.JSON)
async def readyz(state: State) -> Response[dict[str, str]]:
    """PostgreSQL and Redis are reachable."""
    container: Container = state.container
    checks: dict[str, str] = {}
    try:
        async with container.db.get_engine().connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["postgres"] = "ok"
    except Exception:
        checks["postgres"] = "unreachable"
    try:
        await container.redis.ping()
        checks["redis"] = "ok"
    except Exception:
        checks["redis"] = "unreachable"
    ready = all(value == "ok" for value in checks.values())
    return Response(checks, status_code=200 if ready else 503)
