"""Workers with warm pods, end to end: GraphQL -> worker -> a warm pod (stand-in) -> GraphQL.

A deployment of its own (API, workers, database, Redis prefix and stand-in), so its workers' reapers
and the suite's other cluster never meet. Its workers keep two warm pods each.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from podrun.runners.kubernetes.pod import LABEL_EXECUTION, LABEL_OWNER, LABEL_WARM
from podrun.settings import Settings
from tests.client import GraphQLClient
from tests.databases import delete_keys, drop_database, fresh_database
from tests.e2e.helpers import assert_consecutive, collect, final, lines, submit
from tests.integration.kubernetes.conftest import Cluster, k8s_settings
from tests.integration.kubernetes.views import StandInView
from tests.kubernetes_standin.server import StandIn, StandInServer
from tests.processes import PodrunDeployment, wait_ready
from tests.waiting import until

SESSION = uuid.uuid4().hex[:10]
PREFIX = f"podrun-k8s-warm-test-{SESSION}"
DATABASE = f"podrun_k8s_warm_test_{SESSION}"


@pytest.fixture(scope="module")
def warm_cluster(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    standin = StandInServer(base_settings).start()
    env = k8s_settings(base_settings, standin.write_kubeconfig(tmp_path_factory.mktemp("k8s-warm") / "kubeconfig"))
    env["PODRUN_DATABASE_URL"] = env["PODRUN_DATABASE_URL"].rsplit("/", 1)[0] + f"/{DATABASE}"
    env["PODRUN_REDIS_PREFIX"] = PREFIX
    env["PODRUN_KUBERNETES__WARM_POOL_SIZE"] = "2"
    own = Settings(database_url=env["PODRUN_DATABASE_URL"], redis_url=env["PODRUN_REDIS_URL"])
    fresh_database(own)
    deployment = PodrunDeployment("k8s-warm", env)
    deployment.worker()
    assert standin.state is not None
    try:
        wait_ready(deployment.base_url, deployment.api)
        yield Cluster(deployment, StandInView(standin.state, None), "python:3.12-slim", standin)
    finally:
        deployment.stop()
        standin.stop()
        drop_database(own)
        delete_keys(own.redis_url, PREFIX)


@pytest.fixture
async def user(warm_cluster: Cluster) -> GraphQLClient:
    return await GraphQLClient(warm_cluster.base_url).register()


def labels(state: StandIn, name: str) -> dict[str, str]:
    pod = state.pods.get(name)
    manifest = pod.manifest if pod is not None else state.deleted_manifests[name]
    return dict(manifest["metadata"].get("labels") or {})


def waiting(state: StandIn) -> set[str]:
    """Warm pods no run has claimed."""
    return {
        name
        for name in list(state.pods)
        if labels(state, name).get(LABEL_WARM) and LABEL_EXECUTION not in labels(state, name)
    }


def pods_of(state: StandIn, execution_id: str) -> list[str]:
    """Every pod that ever carried the execution's label, in the order they were made."""
    execution = uuid.UUID(execution_id).hex
    return [name for name in state.created_specs if labels(state, name).get(LABEL_EXECUTION) == execution]


async def test_a_run_is_served_by_a_warm_pod(warm_cluster: Cluster, user: GraphQLClient) -> None:
    state = warm_cluster.state
    await until(lambda: len(waiting(state)) == 2)
    ready = waiting(state)
    execution_id = await submit(user, "import time\nfor i in range(3):\n    print('line', i)\n    time.sleep(0.1)\n")
    events = await collect(user, execution_id)
    assert_consecutive(events)
    assert lines(events) == ["line 0", "line 1", "line 2"]
    assert [e["status"] for e in events if e["kind"] == "status"] == ["STARTING", "RUNNING", "SUCCEEDED"]
    served = pods_of(state, execution_id)
    assert len(served) == 1
    assert served[0] in ready
    assert served[0] in state.deleted


async def test_a_worker_killed_between_claim_and_header_leaves_a_run_another_starts_afresh(
    warm_cluster: Cluster, user: GraphQLClient
) -> None:
    state = warm_cluster.state
    await until(lambda: len(waiting(state)) == 2)
    owner = labels(state, next(iter(waiting(state))))[LABEL_OWNER]
    held = state.attaches_held
    # The header's attach is held: the worker has claimed the pod and waits to deliver the header.
    state.call(lambda: setattr(state, "hold_next_attach_s", 20.0))
    execution_id = await submit(user, "import sys\nprint('once', sys.stdin.read())", stdin="in")
    await until(lambda: bool(pods_of(state, execution_id)) and state.attaches_held > held)
    (claimed,) = pods_of(state, execution_id)
    (holder,) = warm_cluster.deployment.live_workers()
    holder.kill()
    assert [line[:1] for _, line in state.pods[claimed].logs] == [b"R"]  # its script never started
    warm_cluster.worker()

    events = await collect(user, execution_id)
    assert_consecutive(events)
    assert lines(events) == ["once in"]
    assert [e["status"] for e in events if e["kind"] == "status"] == ["STARTING", "RUNNING", "SUCCEEDED"]
    assert final(events)["exitCode"] == 0
    # The new worker deleted the pod that never got its header and ran the script once, elsewhere.
    assert pods_of(state, execution_id)[0] == claimed
    assert len(pods_of(state, execution_id)) == 2
    assert all(name in state.deleted for name in pods_of(state, execution_id))
    # The dead worker's pods that still waited for a run are reaped by the live one.
    await until(lambda: not any(labels(state, name).get(LABEL_OWNER) == owner for name in waiting(state)))
