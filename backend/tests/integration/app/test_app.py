"""The app's HTTP surface in development and production mode (real PostgreSQL and Redis)."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from podrun.app import create_app
from podrun.settings import Settings


@pytest.mark.parametrize(("mode", "graphiql"), [("development", True), ("production", False)])
async def test_graphiql_only_in_development(mode: str, graphiql: bool) -> None:
    settings = Settings(mode=mode, jwt_secret="p" * 48)  # type: ignore[arg-type]
    async with AsyncTestClient(app=create_app(settings)) as client:
        page = await client.get("/graphql", headers={"accept": "text/html"})
        assert ("graphiql" in page.text.lower()) is graphiql
        assert page.status_code == (200 if graphiql else 404)
        health = await client.get("/healthz")
        assert (health.status_code, health.text) == (200, "ok")
        ready = await client.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"postgres": "ok", "redis": "ok"})
        # Queries still work over GET in both modes.
        runtimes = await client.get("/graphql", params={"query": "{ runtimes { id default isolation } }"})
        assert runtimes.status_code == 200
        assert sum(r["default"] for r in runtimes.json()["data"]["runtimes"]) == 1
        # Which isolation is in force on this host, e.g. "bubblewrap namespaces, cgroup v1 (...) + rlimits".
        assert all(r["isolation"].startswith("bubblewrap namespaces, ") for r in runtimes.json()["data"]["runtimes"])


async def test_readyz_reports_an_unreachable_database() -> None:
    settings = Settings(jwt_secret="p" * 48, database_url="postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    async with AsyncTestClient(app=create_app(settings)) as client:
        ready = await client.get("/readyz")
    assert (ready.status_code, ready.json()) == (503, {"postgres": "unreachable", "redis": "ok"})
