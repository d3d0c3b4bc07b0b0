"""Podrun with PODRUN_RUNNER=kubernetes against the stand-in API server.

Own PostgreSQL database (`podrun_k8s_test_<session>`), Redis db 11 and key prefix
`podrun-k8s-test-<session>`, so these tests never meet the other suites' runs, nor another session of
this suite running at the same time (its workers would take this session's jobs to its own stand-in,
and its fresh database would drop this one's). Workers come and go (the crash test kills one).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from podrun.settings import Settings
from tests.client import GraphQLClient
from tests.databases import delete_keys, drop_database, fresh_database
from tests.kubernetes_standin.server import StandIn, StandInServer
from tests.processes import PodrunDeployment, wait_ready

SESSION = uuid.uuid4().hex[:10]
PREFIX = f"podrun-k8s-test-{SESSION}"
DATABASE = f"podrun_k8s_test_{SESSION}"
REDIS_DB = 11
BROKEN_RUNTIME = "python-broken"


class Cluster(PodrunDeployment):
    """The stand-in, an API process and workers that tests may kill and add."""

    def __init__(self, env: dict[str, str], standin: StandInServer) -> None:
        super().__init__("k8s", env)
        self.standin = standin

    @property
    def state(self) -> StandIn:
        assert self.standin.state is not None
        return self.standin.state


def k8s_settings(settings: Settings, kubeconfig: Path) -> dict[str, str]:
    url = make_url(settings.database_url)
    runtimes = {f"python-3.{minor}": f"python:3.{minor}-slim" for minor in range(10, 14)}
    runtimes[BROKEN_RUNTIME] = "registry.invalid/podrun/missing:1"
    return {
        "PODRUN_DATABASE_URL": url.set(database=DATABASE).render_as_string(hide_password=False),
        "PODRUN_REDIS_URL": settings.redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}",
        "PODRUN_REDIS_PREFIX": PREFIX,
        "PODRUN_RUNNER": "kubernetes",
        "PODRUN_KUBERNETES__KUBECONFIG": str(kubeconfig),
        "PODRUN_KUBERNETES__RUNTIMES": json.dumps(runtimes),
        "PODRUN_KUBERNETES__DEFAULT_RUNTIME": "python-3.12",
        "PODRUN_KUBERNETES__REAP_INTERVAL_S": "1",
        "PODRUN_KUBERNETES__WATCH_TIMEOUT_S": "5",
        "PODRUN_KUBERNETES__STARTUP_ALLOWANCE_S": "20",
    }


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def standin(base_settings: Settings) -> Iterator[StandInServer]:
    server = StandInServer(base_settings).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def cluster(
    base_settings: Settings, standin: StandInServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    env = k8s_settings(base_settings, standin.write_kubeconfig(tmp_path_factory.mktemp("k8s") / "kubeconfig"))
    own = Settings(database_url=env["PODRUN_DATABASE_URL"], redis_url=env["PODRUN_REDIS_URL"])
    fresh_database(own)
    running = Cluster(env, standin)
    running.worker()
    try:
        wait_ready(running.base_url, running.api)
        yield running
    finally:
        running.stop()
        drop_database(own)
        delete_keys(own.redis_url, PREFIX)


@pytest.fixture
async def user(cluster: Cluster) -> GraphQLClient:
    return await GraphQLClient(cluster.base_url).register()
