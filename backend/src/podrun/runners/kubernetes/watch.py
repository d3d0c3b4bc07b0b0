"""A pod's state over time: list, then watch, and wait until its container runs.

One pod is followed by name; a watch's server-side timeout is bounded, and a watch whose
resourceVersion has expired (410 Gone) lists again, so no change is missed in between.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import aiohttp
import structlog
from kubernetes_asyncio.client import models as k8s
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.watch import Watch

from podrun.runners.ending import IMAGE_FAILED, START_FAILED, START_TIMED_OUT
from podrun.runners.kubernetes.client import REQUEST_TIMEOUT_S, Api
from podrun.runners.kubernetes.status import container_state, pod_ended

log = structlog.get_logger(__name__)

IMAGE_FAILURES = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
CONFIG_FAILURES = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})


async def pod_updates(cluster: Api, name: str) -> AsyncGenerator[k8s.V1Pod | None]:
    """The pod now and after every change (None while it does not exist).

    List, then watch from the list's resourceVersion with a bounded server-side timeout, then
    watch again from the last version seen; when that version has expired (410 Gone), list again.
    """
    api = await cluster.core()
    selector = f"metadata.name={name}"
    while True:
        listed = await api.list_namespaced_pod(
            cluster.namespace, field_selector=selector, _request_timeout=REQUEST_TIMEOUT_S
        )
        yield listed.items[0] if listed.items else None
        version = listed.metadata.resource_version
        try:
            while True:
                watch = Watch()
                async with watch:
                    async for event in watch.stream(
                        api.list_namespaced_pod,
                        cluster.namespace,
                        field_selector=selector,
                        resource_version=version,
                        timeout_seconds=cluster.settings.kubernetes.watch_timeout_s,
                        _request_timeout=cluster.settings.kubernetes.watch_timeout_s + REQUEST_TIMEOUT_S,
                    ):
                        pod: k8s.V1Pod = event["object"]
                        version = pod.metadata.resource_version or version
                        yield None if event["type"] == "DELETED" else pod
        except ApiException as exc:
            if exc.status != 410:
                raise
            log.info("pod watch expired, listing again", sandbox=name)


async def wait_running(cluster: Api, name: str) -> tuple[k8s.V1Pod | None, str | None]:
    """Wait until the pod's container runs (or already ended).

    Returns the pod as last seen, and a user-facing error if it never will run.
    """
    last: k8s.V1Pod | None = None
    timeout = cluster.settings.kubernetes.startup_allowance_s
    try:
        async with asyncio.timeout(timeout):
            async with contextlib.aclosing(pod_updates(cluster, name)) as updates:
                async for pod in updates:
                    last = pod
                    if pod is None:
                        return None, START_FAILED
                    state = container_state(pod)
                    if pod_ended(pod) or (state is not None and state.running is not None):
                        return pod, None
                    waiting = state.waiting if state is not None else None
                    if waiting is not None and waiting.reason in IMAGE_FAILURES:
                        log.error("runtime image not pulled", sandbox=name, reason=waiting.reason)
                        return pod, IMAGE_FAILED
                    if waiting is not None and waiting.reason in CONFIG_FAILURES:
                        log.error("container not created", sandbox=name, reason=waiting.reason)
                        return pod, START_FAILED
    except TimeoutError:
        log.exception("pod did not start", sandbox=name, timeout_s=timeout)
        return last, START_TIMED_OUT
    except (ApiException, aiohttp.ClientError) as exc:
        log.exception("pod watch failed", sandbox=name, error=type(exc).__name__)
        return last, START_FAILED
    return last, START_FAILED
