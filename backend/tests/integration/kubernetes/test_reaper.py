"""The reaper removes execution pods whose execution is over or unknown, and leaves running ones alone."""

from __future__ import annotations

import asyncio
import uuid

from kubernetes_asyncio.client import ApiClient

from podrun.core.limits import Limits
from podrun.runners.base import SandboxSpec, sandbox_name
from podrun.runners.kubernetes.pod import build_pod
from podrun.settings import KubernetesSettings, Settings
from tests.client import GraphQLClient
from tests.e2e.helpers import collect, submit, wait_for_status
from tests.integration.kubernetes.conftest import Cluster

CANCEL = "mutation($id: ID!) { cancelExecution(id: $id) { id status } }"


async def create_pod(cluster: Cluster, execution_id: uuid.UUID) -> str:
    """An execution pod made outside Podrun (by the cluster's administrator) for `execution_id`."""
    spec = SandboxSpec(
        sandbox_name(execution_id),
        "python-3.12",
        "",
        None,
        Limits(wall_time_ms=1000, cpu_time_ms=1000, memory_mib=64, output_bytes=1000, processes=4),
    )
    settings = Settings(kubernetes=KubernetesSettings(image_pull_policy="Never"))
    body = ApiClient().sanitize_for_serialization(build_pod(spec, execution_id, cluster.image, settings))
    await asyncio.to_thread(cluster.pods.create_pod, body)
    return spec.name


async def test_pods_of_finished_or_unknown_executions_are_reaped(cluster: Cluster, user: GraphQLClient) -> None:
    finished = await submit(user, "print(1)")
    await collect(user, finished)
    running = await submit(user, "import time\ntime.sleep(20)", limits={"wallTimeMs": 30_000})
    await wait_for_status(user, running, "RUNNING")
    leftovers = [await create_pod(cluster, uuid.UUID(finished)), await create_pod(cluster, uuid.uuid4())]
    for _ in range(100):
        if not any(cluster.pods.pod_exists(name) for name in leftovers):
            break
        await asyncio.sleep(0.1)
    assert not any(cluster.pods.pod_exists(name) for name in leftovers)
    assert cluster.pods.pod_exists(sandbox_name(uuid.UUID(running)))
    await user.execute(CANCEL, {"id": running})
