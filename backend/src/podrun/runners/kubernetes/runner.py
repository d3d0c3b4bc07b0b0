"""The Kubernetes runner: one hardened pod per execution, driven through kubernetes-asyncio.

Lifecycle of one run: create the pod (409: it exists already, so a retried job re-attaches to
it), create its ConfigMap (owned by the pod), wait until its container runs (watch.py), then hand
it to a `PodSandbox` (sandbox.py), which follows its log (logs.py), feeds its stdin (attach.py) and
classifies its end (status.py, and the one classifier in ../ending.py). The reaper is reaper.py,
the API client's life client.py, the pod's manifest pod.py.

Warm pods (`warm_pool_size` > 0, off by default): a pool (warm_pool.py) keeps pods made ahead of any
run, from settings alone, up and waiting for a header on stdin. A run takes one, claims it with one
patch (its execution id label, its own deadline), then sends the header over the attach stream; the
run's smaller limits are the harness's rlimits, the pod's limits the largest ones. From the claim on
it is that run's pod like any other: followed, re-attached to by its label, reaped and deleted. The
harness's `S` frame in the pod log says the header arrived: a worker taking over a run whose warm pod
never got it deletes that pod and starts the run afresh, since its script never started.

Kernels (`spec.kernel`): one pod per kernel, labelled by the kernel's id, its harness serving cells
(sandbox.py). Each start of a kernel (a restart starts it again) gets a pod name of its own: the kubelet
may still be tearing down the previous pod when the next is created, and would route the new pod's log and
attach requests by name to the old one. It outlives its worker like a run's pod: a worker taking the kernel
over finds it by its label and re-attaches to it (`resume`), and never starts a fresh one, whose state
would be lost. Warm pods serve kernels only when their deadline is a kernel's at least (pod.py
`serves_kernels`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import cached_property
from uuid import UUID

import aiohttp
import structlog
from kubernetes_asyncio import client
from kubernetes_asyncio.client import models as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from podrun.observability import metrics
from podrun.runners import protocol
from podrun.runners.base import FailedSandbox, RuntimeSpec, SandboxSpec
from podrun.runners.ending import START_FAILED
from podrun.runners.frames import header_frame
from podrun.runners.kubernetes import reaper
from podrun.runners.kubernetes.client import REQUEST_TIMEOUT_S, Api
from podrun.runners.kubernetes.pod import (
    CONTAINER,
    LABEL_KERNEL,
    LABEL_WARM,
    SELECTOR,
    WARM_PREFIX,
    build_config_map,
    build_pod,
    build_warm_config_map,
    build_warm_pod,
    claim_patch,
    execution_id_of,
    header,
    id_from_name,
    id_label,
    is_warm,
    serves_kernels,
)
from podrun.runners.kubernetes.sandbox import PodSandbox, WarmPod
from podrun.runners.kubernetes.status import pod_ended, reasons
from podrun.runners.kubernetes.watch import wait_running
from podrun.runners.warm_pool import WarmPool
from podrun.settings import Settings

log = structlog.get_logger(__name__)

# How long a started warm pod may take to say ready (its container runs: only the interpreter is left).
HARNESS_READY_TIMEOUT_S = 30.0
# Enough of a pod's log to hold the harness's first two frames (ready, then started).
LOG_HEAD_BYTES = 4096
KERNEL_GONE = "the kernel's pod is gone"


class KubernetesRunner:
    """Runs each execution as a pod in `settings.kubernetes.namespace`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cluster = Api(settings)
        self.namespace = self.cluster.namespace
        # Warm pods carry the id of the worker whose pool made them (`open` sets it).
        self.owner = uuid.uuid4().hex
        # Deletions of pods whose launch was cancelled, which `close` waits for before closing the client.
        self.discarding: set[asyncio.Task[None]] = set()

    @cached_property
    def pool(self) -> WarmPool[WarmPod]:
        """Pods made ahead of their runs (none unless `warm_pool_size` is set)."""
        kubernetes = self.settings.kubernetes
        return WarmPool(
            kubernetes.warm_pool_size, kubernetes.warm_pool_idle_s, self.launch_warm, max_size=kubernetes.warm_pool_max
        )

    async def api(self) -> client.CoreV1Api:
        """The core API (made on first use)."""
        return await self.cluster.core()

    def runtimes(self) -> list[RuntimeSpec]:
        """The runtimes of the catalog in settings, each one image."""
        return [
            RuntimeSpec(
                id=runtime_id,
                language="python",
                version=runtime_id.removeprefix("python-"),
                default=runtime_id == self.settings.kubernetes.default_runtime,
                max_limits=self.settings.limits.maximum,
                default_limits=self.settings.limits.default,
            )
            for runtime_id in self.settings.kubernetes.runtimes
        ]

    def isolation(self) -> str:
        """How runs are isolated."""
        runtime_class = self.settings.kubernetes.runtime_class or "the default runtime class"
        return f"Kubernetes pods (restricted) in {self.namespace}, {runtime_class}"

    async def start(self, spec: SandboxSpec) -> PodSandbox | FailedSandbox:
        """Start the run in a warm pod when one waits, else in a pod of its own (re-attaching where one exists)."""
        image = self.settings.kubernetes.runtimes.get(spec.runtime_id)
        if image is None:
            raise LookupError(f"unknown runtime {spec.runtime_id!r}")
        execution_id = id_from_name(spec.name)
        if spec.resume:
            return await self.resume(spec, execution_id, image)
        if spec.kernel:
            spec = replace(spec, name=f"{spec.name}-{uuid.uuid4().hex[:8]}")
        began = time.monotonic()
        warm_ok = not spec.kernel or serves_kernels(self.settings)
        while warm_ok and (warm := self.pool.take(spec.runtime_id)) is not None:
            sandbox = await self.start_warm(warm, spec, execution_id)
            if sandbox is not None:
                metrics.sandbox_started("kubernetes", warm=True)
                log.info(
                    "sandbox started", sandbox=warm.name, warm=True, ms=round((time.monotonic() - began) * 1000, 1)
                )
                return sandbox
        metrics.sandbox_started("kubernetes", warm=False)
        return await self.start_cold(spec, execution_id, image)

    async def resume(self, spec: SandboxSpec, execution_id: UUID, image: str) -> PodSandbox | FailedSandbox:
        """Take over a run a dead worker started: follow its pod, unless it is a warm pod that never got its header."""
        if spec.kernel:
            return await self.reattach_kernel(spec, execution_id)
        api = await self.api()
        claimed = await api.list_namespaced_pod(
            self.namespace,
            label_selector=f"{SELECTOR},{LABEL_WARM}=true,{id_label(spec.name)}={execution_id.hex}",
            _request_timeout=REQUEST_TIMEOUT_S,
        )
        for pod in claimed.items:
            name = pod.metadata.name
            if await self.script_started(name):
                log.info("re-attaching to claimed warm pod", sandbox=name)
                sandbox = PodSandbox.for_run(self.cluster, name, spec, reattached=True)
                failure = await sandbox.wait_started()
                if failure is not None:
                    await self.cleanup(name)
                    return FailedSandbox(failure)
                return sandbox
            # Its worker died between the claim and the header: the script never ran, so it may run now.
            log.warning("claimed warm pod never got its header, starting the run afresh", sandbox=name)
            await self.cleanup(name)
        return await self.start_cold(spec, execution_id, image)

    async def reattach_kernel(self, spec: SandboxSpec, kernel_id: UUID) -> PodSandbox | FailedSandbox:
        """Follow a kernel's pod again (its newest, found by label); a kernel whose pod is gone lost its state."""
        api = await self.api()
        listed = await api.list_namespaced_pod(
            self.namespace,
            label_selector=f"{SELECTOR},{LABEL_KERNEL}={kernel_id.hex}",
            _request_timeout=REQUEST_TIMEOUT_S,
        )
        pods = [pod for pod in listed.items if pod.metadata.deletion_timestamp is None]
        for pod in sorted(pods, key=lambda pod: pod.metadata.creation_timestamp, reverse=True):
            name = pod.metadata.name
            if is_warm(pod) and not await self.script_started(name):
                log.warning("claimed warm pod never got its kernel's header", sandbox=name)
                await self.cleanup(name)
                continue
            log.info("re-attaching to kernel pod", sandbox=name)
            sandbox = PodSandbox.for_run(self.cluster, name, spec, reattached=True)
            failure = await sandbox.wait_started()
            if failure is not None:
                await self.cleanup(name)
                return FailedSandbox(failure)
            return sandbox
        log.warning("kernel pod gone", kernel_id=str(kernel_id))
        return FailedSandbox(KERNEL_GONE)

    async def start_cold(self, spec: SandboxSpec, execution_id: UUID, image: str) -> PodSandbox | FailedSandbox:
        """Create the execution's pod, or re-attach to it if an earlier attempt created it."""
        api = await self.api()
        try:
            pod = await api.create_namespaced_pod(self.namespace, build_pod(spec, execution_id, image, self.settings))
            reattached = False
            if self.settings.kubernetes.user_namespaces and pod.spec.host_users is not False:
                # API servers that do not know the field (before 1.25, or with the feature off) drop it.
                log.warning(
                    "the API server dropped hostUsers: the pod runs without a user namespace", sandbox=spec.name
                )
        except ApiException as exc:
            if exc.status != 409:
                log.exception("pod not created", sandbox=spec.name, status=exc.status, reason=exc.reason)
                return FailedSandbox(START_FAILED)
            pod = await api.read_namespaced_pod(spec.name, self.namespace)
            reattached = True
        if reattached and execution_id_of(pod, id_label(spec.name)) != execution_id:
            log.error("pod name taken by something else", sandbox=spec.name)
            return FailedSandbox(START_FAILED)
        if reattached:
            log.info("re-attaching to existing pod", sandbox=spec.name)
        try:
            await api.create_namespaced_config_map(
                self.namespace, build_config_map(spec, execution_id, self.settings, pod)
            )
        except ApiException as exc:
            if exc.status != 409:  # 409: created by the attempt that created the pod
                log.exception("configmap not created", sandbox=spec.name, status=exc.status, reason=exc.reason)
                await self.cleanup(spec.name)
                return FailedSandbox(START_FAILED)
        sandbox = PodSandbox.for_run(self.cluster, spec.name, spec, reattached=reattached)
        failure = await sandbox.wait_started()
        if failure is not None:
            await self.cleanup(spec.name)
            return FailedSandbox(failure)
        return sandbox

    async def start_warm(self, warm: WarmPod, spec: SandboxSpec, execution_id: UUID) -> PodSandbox | None:
        """Claim a warm pod for the run and send it the header; None (the pod deleted) when it cannot serve."""
        api = await self.api()
        patch = claim_patch(execution_id, spec.limits, self.settings, waited_s=warm.waited_s(), kernel=spec.kernel)
        warm.taken = True
        try:
            pod = await api.patch_namespaced_pod(warm.name, self.namespace, patch, _request_timeout=REQUEST_TIMEOUT_S)
        except (ApiException, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("warm pod not claimed", sandbox=warm.name, error=type(exc).__name__)
            await warm.discard()
            return None
        if pod_ended(pod):
            log.warning("warm pod ended while waiting", sandbox=warm.name, pod_reason=reasons(pod))
            await warm.discard()
            return None
        sandbox = PodSandbox.for_run(self.cluster, warm.name, spec, reattached=False)
        sandbox.pod = pod
        run_header = header(spec, self.settings, pod_memory_mib=self.settings.limits.maximum.memory_mib)
        if not await sandbox.deliver_header(header_frame(run_header)):
            await warm.discard()  # its script never started: the run goes on in another pod
            return None
        return sandbox

    async def launch_warm(self, runtime_id: str) -> WarmPod | None:
        """A pod for the pool, made from settings alone, its harness up and waiting for a header."""
        image = self.settings.kubernetes.runtimes[runtime_id]
        warm = WarmPod(self.cluster, WARM_PREFIX + uuid.uuid4().hex)
        api = await self.api()
        try:
            pod = await api.create_namespaced_pod(
                self.namespace, build_warm_pod(warm.name, runtime_id, image, self.owner, self.settings)
            )
            await api.create_namespaced_config_map(self.namespace, build_warm_config_map(self.settings, pod))
            ready = await self.harness_ready(warm.name)
        except asyncio.CancelledError:
            # The pool is closing: nobody else would delete this pod. In a task of its own that `close` waits for:
            # the pool's close cancels again and again, so a shield here could be left behind.
            discard = asyncio.create_task(warm.discard(), name=f"discard-{warm.name}")
            self.discarding.add(discard)
            discard.add_done_callback(self.discarding.discard)
            raise
        except (ApiException, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("warm pod not started", sandbox=warm.name, error=type(exc).__name__)
            ready = False
        if not ready:
            await warm.discard()
            return None
        return warm

    async def harness_ready(self, name: str) -> bool:
        """Wait until the pod runs and its harness has said ready (its first frame)."""
        _, failure = await wait_running(self.cluster, name)
        if failure is not None:
            return False
        async with asyncio.timeout(HARNESS_READY_TIMEOUT_S):
            response = await self.cluster.open_log(name, [("container", CONTAINER), ("follow", "true")])
            try:
                if response.status != 200:
                    return False
                first = await response.content.readline()
            finally:
                response.release()
        try:
            return protocol.parse_frame(first)[0] == protocol.READY
        except protocol.FrameError:
            return False

    async def script_started(self, name: str) -> bool:
        """Whether the pod's harness said its script started (the `S` frame, right after its ready frame)."""
        api = await self.api()
        try:
            head = await api.read_namespaced_pod_log(
                name,
                self.namespace,
                container=CONTAINER,
                limit_bytes=LOG_HEAD_BYTES,
                _request_timeout=REQUEST_TIMEOUT_S,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            return False
        return protocol.STARTED in str(head).split("\n")[:2]

    async def open(self, worker_id: str) -> None:
        """Warm the default runtime's pods when the pool is on; other runtimes warm on their first run."""
        self.owner = worker_id
        default = self.settings.kubernetes.default_runtime
        if self.settings.kubernetes.warm_pool_size > 0 and default in self.settings.kubernetes.runtimes:
            self.pool.warm(default)

    async def close(self) -> None:
        """Delete this worker's waiting warm pods and close the API connections.

        Execution pods outlive the worker by design.
        """
        await self.pool.close()
        if self.discarding:
            await asyncio.wait(self.discarding)
        await self.cluster.close()

    async def cleanup(self, name: str) -> None:
        """Delete the pod and its ConfigMap now. Idempotent."""
        await self.cluster.delete(name)

    async def delete_unclaimed(self, pod: k8s.V1Pod) -> bool:
        """Delete a warm pod (and its ConfigMap) only if it has not changed since it was listed; whether it was."""
        return await reaper.delete_unclaimed(self.cluster, pod)

    async def reap(self, keep: Callable[[UUID], Awaitable[bool]], alive: Callable[[str], Awaitable[bool]]) -> list[str]:
        """Delete the pods nobody will come back for (reaper.py)."""
        return await reaper.reap(self.cluster, keep, alive)
