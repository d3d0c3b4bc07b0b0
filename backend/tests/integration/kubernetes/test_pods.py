"""What Kubernetes 1.20 itself does with the execution pod: fields it lacks, the ConfigMap the pod owns; and
what a pod of the local cluster can reach."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.client import models as k8s

from podrun.core.limits import Limits
from podrun.runners.base import SandboxSpec, sandbox_name
from podrun.runners.kubernetes.pod import build_config_map, build_pod
from podrun.settings import KubernetesSettings, Settings
from tests.client import EVENTS, GraphQLClient
from tests.e2e.helpers import collect, final, flatten, lines, submit
from tests.kubernetes_local.cluster import LocalCluster
from tests.kubernetes_local.fixtures import RealPodrun

LIMITS = Limits(wall_time_ms=10_000, cpu_time_ms=5_000, memory_mib=256, output_bytes=1 << 20, processes=16)


def serialize(obj: object) -> dict[str, Any]:
    """The JSON the client sends (the client needs a running loop, so callers are async tests)."""
    return ApiClient().sanitize_for_serialization(obj)  # type: ignore[no-any-return]


async def test_a_server_without_host_users_drops_it_and_the_pod_runs(real_podrun: RealPodrun) -> None:
    # The suite's workers ask for user namespaces (tests/kubernetes_local/fixtures.py); 1.20 knows no hostUsers.
    client = await GraphQLClient(real_podrun.deployment.base_url).register()
    execution_id = await submit(client, "import time\nprint('up', flush=True)\ntime.sleep(1)\n")
    name = sandbox_name(uuid.UUID(execution_id))
    async for data in client.subscribe(EVENTS, {"id": execution_id, "after": 0}):
        if any(event.get("text") == "up" for event in flatten(data["executionEvents"])):
            break
    with real_podrun.cluster.client() as api:
        stored = api.get(f"/api/v1/namespaces/podrun-exec/pods/{name}").json()
    assert "hostUsers" not in stored["spec"]
    assert stored["spec"]["securityContext"]["runAsUser"] == 65534
    assert final(await collect(client, execution_id))["status"] == "SUCCEEDED"
    # The worker sent hostUsers: false (tests/unit/runners/kubernetes/test_pod.py) and says it was dropped.
    worker_logs = "".join(process.log_path.read_text() for process in real_podrun.deployment.processes)
    assert re.search(rf"dropped hostUsers.*{name}", worker_logs)


async def test_the_config_map_goes_with_its_pod(local_kubernetes: LocalCluster) -> None:
    # In `default`, where no reaper deletes anything: only the garbage collector can remove the ConfigMap.
    settings = Settings(kubernetes=KubernetesSettings(namespace="default", image_pull_policy="Never"))
    execution_id = uuid.uuid4()
    spec = SandboxSpec(sandbox_name(execution_id), "python-3.11", "print(1)\n", b"", LIMITS)
    with local_kubernetes.client() as api:
        created = api.post(
            "/api/v1/namespaces/default/pods",
            json=serialize(build_pod(spec, execution_id, local_kubernetes.images["python-3.11"], settings)),
        )
        assert created.status_code == 201, created.text
        owner = k8s.V1Pod(metadata=k8s.V1ObjectMeta(name=spec.name, uid=created.json()["metadata"]["uid"]))
        config_map = serialize(build_config_map(spec, execution_id, settings, owner))
        assert api.post("/api/v1/namespaces/default/configmaps", json=config_map).status_code == 201
        assert api.delete(f"/api/v1/namespaces/default/pods/{spec.name}", params={"gracePeriodSeconds": 0}).is_success
        for _ in range(300):
            if api.get(f"/api/v1/namespaces/default/configmaps/{spec.name}").status_code == 404:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the pod's ConfigMap outlived it")


REACH = """\
import errno, socket, sys
for address in sys.argv[1:] or {addresses!r}:
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        print(address, "connected")
    except OSError as error:
        print(address, errno.errorcode.get(error.errno, "timeout"))
"""


async def test_a_pod_of_the_local_cluster_reaches_neither_the_node_nor_beyond(real_podrun: RealPodrun) -> None:
    # Not NetworkPolicy (the bridge plugin does not enforce it): the local cluster's pod network has no
    # gateway, so a script cannot reach the kubelet on the node's address, nor anything outside.
    with real_podrun.cluster.client() as api:
        node = api.get(f"/api/v1/nodes/{real_podrun.cluster.node}").json()
    [node_ip] = [a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"]
    addresses = [f"{node_ip}:10250", "1.1.1.1:53"]
    client = await GraphQLClient(real_podrun.deployment.base_url).register()
    events = await collect(client, await submit(client, REACH.format(addresses=addresses)))
    assert lines(events) == [f"{address} ENETUNREACH" for address in addresses]
