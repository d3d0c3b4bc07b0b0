"""A worker killed mid-run: the pod lives on, and another worker re-attaches to it (runs after test_runs)."""

from __future__ import annotations

from tests.client import EVENTS, GraphQLClient
from tests.e2e.helpers import assert_consecutive, collect, execution, final, flatten, submit
from tests.integration.kubernetes.conftest import Cluster
from tests.waiting import until

SCRIPT = "import time\nfor i in range(50):\n    print('line', i, flush=True)\n    time.sleep(0.3)\n"


async def test_a_new_worker_re_attaches_to_the_running_pod(cluster: Cluster, user: GraphQLClient) -> None:
    execution_id = await submit(user, SCRIPT, limits={"wallTimeMs": 45_000})
    async for data in user.subscribe(EVENTS, {"id": execution_id, "after": 0}):
        if any(event.get("text") == "line 3" for event in flatten(data["executionEvents"])):
            break
    cluster.holder().kill()
    name = "podrun-" + execution_id.replace("-", "")
    assert cluster.pods.pod_exists(name)  # the pod does not die with its worker
    cluster.worker()

    events = await collect(user, execution_id)
    assert_consecutive(events)
    assert final(events)["status"] == "SUCCEEDED"
    # One STARTING and one RUNNING: the re-attaching worker does not start the run again.
    assert [e["status"] for e in events if e["kind"] == "status"] == ["STARTING", "RUNNING", "SUCCEEDED"]
    stored = await execution(user, execution_id)
    assert stored["stdout"] == "".join(f"line {i}\n" for i in range(50))
    # Created once; the second create answered 409 and the new worker attached to the same pod.
    assert cluster.pods.creates(name) == 2
    # The pod is deleted after the run has ended, in the background (and a real cluster's audit log lags it; each
    # look reads that log).
    await until(lambda: cluster.pods.deletes(name) >= 1, message="the pod was never deleted", every=0.2)
    assert cluster.pods.deletes(name) == 1
