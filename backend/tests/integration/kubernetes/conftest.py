"""Podrun with PODRUN_RUNNER=kubernetes, against the stand-in API server and against the local Kubernetes 1.20.

Every test that takes `cluster` runs twice: `[standin]` against the stand-in
(tests/kubernetes_standin/), `[real]` against the local cluster (`./taskw kubernetes:up`), through
the one Podrun of tests/kubernetes_local/fixtures.py. Tests marked `standin_only` stage what only
the stand-in can (a log follow cut mid-line, watch history compacted under a running watch).
What a test observes of the cluster goes through `cluster.pods` (views.py).

The stand-in's Podrun has its own PostgreSQL database (`podrun_k8s_test_<session>`), Redis db 11
and key prefix `podrun-k8s-test-<session>`, so these tests never meet the other suites' runs, nor
another session of this suite running at the same time (its workers would take this session's jobs
to its own stand-in, and its fresh database would drop this one's). Workers come and go (the crash
tests kill one).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from podrun.settings import Settings
from tests.client import GraphQLClient
from tests.databases import delete_keys, drop_database, fresh_database
from tests.integration.kubernetes.views import ClusterView, RealView, StandInView
from tests.kubernetes_local.fixtures import BROKEN_RUNTIME, RealPodrun
from tests.kubernetes_standin.server import StandIn, StandInServer
from tests.processes import PodrunDeployment, PodrunProcess, wait_ready

SESSION = uuid.uuid4().hex[:10]
PREFIX = f"podrun-k8s-test-{SESSION}"
DATABASE = f"podrun_k8s_test_{SESSION}"
REDIS_DB = 11
KUBERNETES = ["standin", "real"]

__all__ = ["BROKEN_RUNTIME", "Cluster"]


class Cluster:
    """A Podrun on the Kubernetes runner (an API process, workers that tests may kill and add) and its cluster."""

    def __init__(
        self, deployment: PodrunDeployment, pods: ClusterView, image: str, standin: StandInServer | None = None
    ) -> None:
        self.deployment = deployment
        self.pods = pods
        self.image = image  # the image of the default runtime
        self.standin = standin

    @property
    def base_url(self) -> str:
        return self.deployment.base_url

    @property
    def startup_allowance_s(self) -> int:
        return int(self.deployment.env["PODRUN_KUBERNETES__STARTUP_ALLOWANCE_S"])

    def worker(self) -> PodrunProcess:
        return self.deployment.worker()

    def holder(self) -> PodrunProcess:
        """A live worker (the only one, in these tests)."""
        return self.deployment.live_workers()[0]

    @property
    def state(self) -> StandIn:
        """The stand-in's state, for the tests that stage faults on it."""
        assert self.standin is not None
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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "kubernetes" in metafunc.fixturenames:
        backends = ["standin"] if metafunc.definition.get_closest_marker("standin_only") else KUBERNETES
        metafunc.parametrize("kubernetes", backends, indirect=True, scope="session")


@pytest.fixture(scope="session")
def kubernetes(request: pytest.FixtureRequest) -> str:
    """Which API server the runner talks to: "standin" or "real" (the local Kubernetes 1.20)."""
    backend: str = request.param
    return backend


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


def _standin_cluster(
    base_settings: Settings, standin: StandInServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    env = k8s_settings(base_settings, standin.write_kubeconfig(tmp_path_factory.mktemp("k8s") / "kubeconfig"))
    own = Settings(database_url=env["PODRUN_DATABASE_URL"], redis_url=env["PODRUN_REDIS_URL"])
    fresh_database(own)
    deployment = PodrunDeployment("k8s", env)
    deployment.worker()

    def create_pod(body: dict[str, Any]) -> None:
        response = httpx.post(f"{standin.url}/api/v1/namespaces/podrun-exec/pods", json=body)
        assert response.status_code == 201, response.text

    assert standin.state is not None
    try:
        wait_ready(deployment.base_url, deployment.api)
        yield Cluster(deployment, StandInView(standin.state, create_pod), "python:3.12-slim", standin)
    finally:
        deployment.stop()
        drop_database(own)
        delete_keys(own.redis_url, PREFIX)


@pytest.fixture(scope="session")
def cluster(
    kubernetes: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    if kubernetes == "real":
        real: RealPodrun = request.getfixturevalue("real_podrun")
        image = json.loads(real.deployment.env["PODRUN_KUBERNETES__RUNTIMES"])[
            real.deployment.env["PODRUN_KUBERNETES__DEFAULT_RUNTIME"]
        ]
        yield Cluster(real.deployment, RealView(real.cluster), image)
        return
    yield from _standin_cluster(
        request.getfixturevalue("base_settings"), request.getfixturevalue("standin"), tmp_path_factory
    )


@pytest.fixture
async def user(cluster: Cluster) -> GraphQLClient:
    return await GraphQLClient(cluster.base_url).register()
