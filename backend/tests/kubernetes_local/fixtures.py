"""Fixtures for the tests that run against the local Kubernetes 1.20 (a pytest plugin of tests/conftest.py).

`local_kubernetes`: the running cluster with the local overlay of infra/k8s applied (namespaces,
the worker's ServiceAccount and Role, quotas). On a machine that cannot host the cluster (not
root, no cgroup v1...) the tests that need it are skipped with the reason, which the end of the
test run repeats in capitals (see tests/conftest.py). On one that can, a cluster that is not up
skips them the same way, or fails them with PODRUN_TEST_KUBERNETES=required (as `./taskw test` and
`./taskw test:kubernetes` run them).

`real_podrun`: one Podrun for every test on the real cluster (the end-to-end tests with the
Kubernetes runner and the runner's own suite), so that only one reaper watches podrun-exec: an API
process and workers on the host with PODRUN_RUNNER=kubernetes and the settings of the overlay's
podrun-config, authenticated as the ServiceAccount podrun-worker with a token from the TokenRequest
API — every call the runner makes meets the real Role, and at the end none may have been refused
(the API server's audit log says). Its own PostgreSQL database
(`podrun_k8s_real_test_<session>`), Redis db 11 and key prefix.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.engine import make_url

from podrun.settings import Settings
from tests.databases import delete_keys, drop_database, fresh_database
from tests.kubernetes_local.cluster import (
    EXECUTIONS,
    WORKER,
    WORKER_USER,
    LocalCluster,
    cannot_host,
    local_overlay,
    not_running,
)
from tests.processes import PodrunDeployment, wait_ready

NOT_TESTED = "REAL KUBERNETES NOT TESTED"
SESSION = uuid.uuid4().hex[:10]
PREFIX = f"podrun-k8s-real-{SESSION}"
DATABASE = f"podrun_k8s_real_test_{SESSION}"
REDIS_DB = 11
# A runtime whose image is not on the node: with imagePullPolicy Never the kubelet refuses to start it.
BROKEN_RUNTIME = "python-broken"
MISSING_IMAGE = "podrun.local/missing:1"


@pytest.fixture(scope="session")
def local_kubernetes() -> LocalCluster:
    """The running local cluster, with the local overlay applied (skipped loudly, or failed, without one)."""
    reason = cannot_host()
    if reason is not None:
        pytest.skip(f"{NOT_TESTED}: this machine cannot host it: {reason}")
    reason = not_running()
    if reason is not None:
        if os.environ.get("PODRUN_TEST_KUBERNETES") == "required":
            pytest.fail(f"{NOT_TESTED}: {reason}", pytrace=False)
        pytest.skip(f"{NOT_TESTED}: {reason}")
    cluster = LocalCluster.load()
    applied = cluster.apply(local_overlay())
    assert applied.returncode == 0, applied.stderr
    # Pods need the namespace's default ServiceAccount, which the controller manager creates.
    with cluster.client() as api:
        for _ in range(300):
            if api.get(f"/api/v1/namespaces/{EXECUTIONS}/serviceaccounts/default").status_code == 200:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"no default ServiceAccount in {EXECUTIONS}")
    return cluster


@dataclass(frozen=True)
class RealPodrun:
    """Podrun's processes on the host, running every execution as a pod of the local cluster."""

    cluster: LocalCluster
    deployment: PodrunDeployment
    settings: Settings


def overlay_settings() -> dict[str, str]:
    """The settings in the local overlay's podrun-config."""
    [config] = [o for o in local_overlay() if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "podrun-config"]
    data: dict[str, str] = config["data"]
    return data


@pytest.fixture(scope="session")
def real_podrun(local_kubernetes: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealPodrun]:
    base = Settings()
    token = local_kubernetes.service_account_token(*WORKER)
    kubeconfig = local_kubernetes.write_kubeconfig(
        tmp_path_factory.mktemp("k8s-real") / "worker.kubeconfig", "podrun-worker", token
    )
    env = overlay_settings()
    runtimes = json.loads(env["PODRUN_KUBERNETES__RUNTIMES"]) | {BROKEN_RUNTIME: MISSING_IMAGE}
    env |= {
        "PODRUN_DATABASE_URL": make_url(base.database_url).set(database=DATABASE).render_as_string(hide_password=False),
        "PODRUN_REDIS_URL": base.redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}",
        "PODRUN_REDIS_PREFIX": PREFIX,
        "PODRUN_KUBERNETES__KUBECONFIG": str(kubeconfig),
        "PODRUN_KUBERNETES__RUNTIMES": json.dumps(runtimes),
        "PODRUN_KUBERNETES__REAP_INTERVAL_S": "1",
        "PODRUN_KUBERNETES__WATCH_TIMEOUT_S": "5",
        "PODRUN_KUBERNETES__STARTUP_ALLOWANCE_S": "30",
        # Kubernetes 1.20 has no hostUsers: the runner sets it, the server drops it, runs must work all the same.
        "PODRUN_KUBERNETES__USER_NAMESPACES": "true",
    }
    settings = Settings(database_url=env["PODRUN_DATABASE_URL"], redis_url=env["PODRUN_REDIS_URL"], redis_prefix=PREFIX)
    fresh_database(settings)
    deployment = PodrunDeployment("k8s-real", env)
    deployment.worker()
    try:
        wait_ready(deployment.base_url, deployment.api)
        yield RealPodrun(local_kubernetes, deployment, settings)
    finally:
        deployment.stop()
        drop_database(settings)
        delete_keys(settings.redis_url, PREFIX)
    assert refused_worker_calls(local_kubernetes) == [], "the worker's Role refused calls of the runner"


def refused_worker_calls(cluster: LocalCluster) -> list[str]:
    """Requests of the runner (kubernetes-asyncio, not the tests' own httpx) that the API server refused."""
    return [
        f"{event['verb']} {event['requestURI']}: {event['responseStatus'].get('reason')}"
        for event in cluster.audit_events()
        if event["user"]["username"] == WORKER_USER
        and event.get("responseStatus", {}).get("code") == 403
        and not event.get("userAgent", "").startswith("python-httpx/")
    ]
