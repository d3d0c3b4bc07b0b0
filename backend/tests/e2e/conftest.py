"""A real Podrun for end-to-end tests: migrated test database, API and worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from sqlalchemy.engine import make_url

from podrun.settings import Settings
from tests.client import GraphQLClient
from tests.databases import fresh_database
from tests.processes import PodrunProcess, free_port, wait_ready


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@dataclass(frozen=True)
class RunningPodrun:
    """The API and worker processes of the session."""

    url: str
    api: PodrunProcess
    worker: PodrunProcess


@pytest.fixture(scope="session")
def podrun_processes(settings: Settings) -> Iterator[RunningPodrun]:
    """A running API with one worker, on a fresh database and an empty Redis db."""
    # A test database has a `test` part in its name: podrun_test, or podrun_test_<you> (PODRUN_TEST_DATABASE_URL).
    assert "test" in (make_url(settings.database_url).database or "").split("_"), (
        "tests must never touch the development database"
    )
    fresh_database(settings)
    redis.Redis.from_url(settings.redis_url).flushdb()
    port = free_port()
    api = PodrunProcess("api", "api", "--port", str(port))
    worker = PodrunProcess("worker", "worker")
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, api)
        yield RunningPodrun(url=base_url, api=api, worker=worker)
    finally:
        worker.stop()
        api.stop()


@pytest.fixture(scope="session")
def podrun(podrun_processes: RunningPodrun) -> str:
    """Base URL of the session's API."""
    return podrun_processes.url


@pytest.fixture
def anonymous(podrun: str) -> GraphQLClient:
    return GraphQLClient(podrun)


@pytest.fixture
async def alice(anonymous: GraphQLClient) -> GraphQLClient:
    return await anonymous.register()


@pytest.fixture
async def bob(anonymous: GraphQLClient) -> GraphQLClient:
    return await anonymous.register()
