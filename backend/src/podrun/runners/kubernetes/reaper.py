"""The reaper: deletes the pods nobody will come back for (ended runs and kernels, orphaned warm pods)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

import structlog
from kubernetes_asyncio import client
from kubernetes_asyncio.client import models as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from podrun.runners.kubernetes.client import REQUEST_TIMEOUT_S, Api
from podrun.runners.kubernetes.pod import LABEL_KERNEL, SELECTOR, execution_id_of, is_warm, owner_of

log = structlog.get_logger(__name__)

# Pods whose deadline is this far behind are removed whatever their execution says.
REAP_AFTER_DEADLINE = timedelta(minutes=10)


async def delete_unclaimed(cluster: Api, pod: k8s.V1Pod) -> bool:
    """Delete a warm pod (and its ConfigMap) only if it has not changed since it was listed; whether it was.

    A claim changes the pod's resourceVersion, so a pod claimed in the meantime stays with its run.
    """
    api = await cluster.core()
    unchanged = client.V1Preconditions(uid=pod.metadata.uid, resource_version=pod.metadata.resource_version)
    body = client.V1DeleteOptions(grace_period_seconds=0, propagation_policy="Background", preconditions=unchanged)
    try:
        await api.delete_namespaced_pod(
            pod.metadata.name, cluster.namespace, body=body, _request_timeout=REQUEST_TIMEOUT_S
        )
    except ApiException as exc:
        if exc.status in (404, 409):
            return False
        raise
    await cluster.delete(pod.metadata.name)
    return True


async def reap(
    cluster: Api, keep: Callable[[UUID], Awaitable[bool]], alive: Callable[[str], Awaitable[bool]]
) -> list[str]:
    """Delete the pods nobody will come back for.

    An execution's pod (cold, or warm and claimed) goes when `keep(execution_id)` is False or its
    deadline is long past; a kernel's likewise, asked with the kernel's id. A warm pod no run has
    claimed goes when the worker whose pool made it is not `alive`, or its deadline has passed (the
    kubelet has ended it), unless it was claimed since the listing.
    """
    api = await cluster.core()
    pods = await api.list_namespaced_pod(cluster.namespace, label_selector=SELECTOR, _request_timeout=REQUEST_TIMEOUT_S)
    now = datetime.now(UTC)
    reaped: list[str] = []
    for pod in pods.items:
        execution_id = execution_id_of(pod) or execution_id_of(pod, LABEL_KERNEL)
        name = pod.metadata.name
        if name is None:
            continue
        created = pod.metadata.creation_timestamp or now
        deadline = created + timedelta(seconds=(pod.spec and pod.spec.active_deadline_seconds) or 0)
        if execution_id is not None:
            if now - deadline < REAP_AFTER_DEADLINE and await keep(execution_id):
                continue
            await cluster.delete(name)
            log.info("execution pod reaped", sandbox=name, execution_id=str(execution_id))
        elif is_warm(pod):
            owner = owner_of(pod)
            if now < deadline and owner is not None and await alive(owner):
                continue
            if not await delete_unclaimed(cluster, pod):
                continue
            log.info("warm pod reaped", sandbox=name, owner=owner)
        else:
            continue
        reaped.append(name)
    return reaped
