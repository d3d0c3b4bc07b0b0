"""The Kubernetes runner: one hardened pod per execution, driven through kubernetes-asyncio.

Lifecycle of one run: create the pod (409: it exists already, so a retried job re-attaches to
it), create its ConfigMap (owned by the pod), watch the pod until its container runs, follow its
log (`follow`, `timestamps`) and turn the harness's frames back into output, resume a broken
follow from the last timestamp without losing or repeating a frame, then read how the container
ended and delete the pod. The pod's only log stream carries the harness's frames, so stdout and
stderr stay apart exactly as with the local runner.

Stdin: input given at submission travels in the header (then EOF). Without it, the container's
stdin (`stdin: true`, which the pod's command appends to the header) stays open, and the runner
attaches to it (pods/attach, a WebSocket speaking the v4.channel.k8s.io protocol, stdin only) on
the first `write_stdin` or `close_stdin`, sending the harness's `I` and `C` frames on channel 0. A
worker that re-attaches to a running pod attaches again; the input already delivered is counted
in a pod annotation, so the input the new worker replays from the control stream is skipped.

Warm pods (`warm_pool_size` > 0, off by default): a pool (warm_pool.py) keeps pods made ahead of any
run, from settings alone, up and waiting for a header on stdin. A run takes one, claims it with one
patch (its execution id label, its own deadline), then sends the header over the attach stream; the
run's smaller limits are the harness's rlimits, the pod's limits the largest ones. From the claim on
it is that run's pod like any other: followed, re-attached to by its label, reaped and deleted. The
harness's `S` frame in the pod log says the header arrived: a worker taking over a run whose warm pod
never got it deletes that pod and starts the run afresh, since its script never started.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import cached_property
from uuid import UUID

import aiohttp
import structlog
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client import models as k8s
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.stream import WsApiClient
from kubernetes_asyncio.watch import Watch

from podrun.core.limits import LimitKind, Limits
from podrun.observability import metrics
from podrun.runners import protocol
from podrun.runners.base import (
    NO_ARTIFACTS,
    STDIN_FRAME_BYTES,
    ArtifactCaps,
    FailedSandbox,
    RuntimeSpec,
    SandboxOutput,
    SandboxResult,
    SandboxSpec,
    SandboxUsage,
)
from podrun.runners.ending import (
    CONNECTION_LOST,
    IMAGE_FAILED,
    PROTOCOL_BROKEN,
    START_FAILED,
    START_TIMED_OUT,
    Ending,
)
from podrun.runners.ending import classify as judge
from podrun.runners.frames import FrameReader, header_frame
from podrun.runners.kubernetes.pod import (
    ANNOTATION_STDIN_CLOSED,
    ANNOTATION_STDIN_DELIVERED,
    CONTAINER,
    LABEL_EXECUTION,
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
    is_warm,
    owner_of,
)
from podrun.runners.warm_pool import WarmPool
from podrun.settings import Settings

log = structlog.get_logger(__name__)

IMAGE_FAILURES = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
CONFIG_FAILURES = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
# A follow that breaks is resumed this many times in a row at most, with a growing pause.
MAX_RESUMES = 20
RESUME_PAUSE_S = 0.2
# After the pod was deleted or its log ended, how long to wait for its final state.
FINAL_STATE_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 30.0
# Pods whose deadline is this far behind are removed whatever their execution says.
REAP_AFTER_DEADLINE = timedelta(minutes=10)
# The channel of the container's stdin on an attach WebSocket (v4.channel.k8s.io), and of its status.
STDIN_CHANNEL = 0
ERROR_CHANNEL = 3
# The Accept header of a log follow, as kubectl sends it: Kubernetes 1.20 answers 406 Not Acceptable
# to `text/plain` alone (it offers only JSON, YAML and protobuf, then streams the log whatever was asked).
LOG_ACCEPT = "application/json, */*"
# Sending a frame over a fresh attach is tried this many times before the input is given up.
ATTACH_ATTEMPTS = 3
# A warm pod's header goes over the attach stream in messages no larger than input frames.
ATTACH_MESSAGE_BYTES = 64 * 1024
# How long a started warm pod may take to say ready (its container runs: only the interpreter is left).
HARNESS_READY_TIMEOUT_S = 30.0
# Enough of a pod's log to hold the harness's first two frames (ready, then started).
LOG_HEAD_BYTES = 4096


def execution_id_from_name(name: str) -> UUID:
    """The execution id inside a sandbox name (see `base.sandbox_name`)."""
    return UUID(hex=name.removeprefix("podrun-"))


class KubernetesRunner:
    """Runs each execution as a pod in `settings.kubernetes.namespace`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.namespace = settings.kubernetes.namespace
        self._api: client.CoreV1Api | None = None
        self.api_client: client.ApiClient | None = None
        self._ws_api: client.CoreV1Api | None = None
        self._ws_client: WsApiClient | None = None
        self._configuration: client.Configuration | None = None
        self._api_lock = asyncio.Lock()
        # Warm pods carry the id of the worker whose pool made them (`open` sets it).
        self.owner = uuid.uuid4().hex

    @cached_property
    def pool(self) -> WarmPool[WarmPod]:
        """Pods made ahead of their runs (none unless `warm_pool_size` is set)."""
        kubernetes = self.settings.kubernetes
        return WarmPool(kubernetes.warm_pool_size, kubernetes.warm_pool_idle_s, self.launch_warm)

    async def api(self) -> client.CoreV1Api:
        """The API client, from the configured kubeconfig or the in-cluster service account."""
        async with self._api_lock:
            if self._api is None:
                configuration = client.Configuration()
                if self.settings.kubernetes.kubeconfig:
                    await config.load_kube_config(
                        config_file=self.settings.kubernetes.kubeconfig,
                        context=self.settings.kubernetes.context,
                        client_configuration=configuration,
                    )
                else:
                    config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
                self._configuration = configuration
                self.api_client = client.ApiClient(configuration)
                self._api = client.CoreV1Api(self.api_client)
            return self._api

    async def ws_api(self) -> client.CoreV1Api:
        """The API over WebSockets, for pods/attach (same configuration, its own connection pool)."""
        await self.api()
        async with self._api_lock:
            if self._ws_api is None:
                self._ws_client = WsApiClient(self._configuration)
                self._ws_api = client.CoreV1Api(self._ws_client)
            return self._ws_api

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
        execution_id = execution_id_from_name(spec.name)
        if spec.resume:
            return await self.resume(spec, execution_id, image)
        began = time.monotonic()
        while (warm := self.pool.take(spec.runtime_id)) is not None:
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
        api = await self.api()
        claimed = await api.list_namespaced_pod(
            self.namespace,
            label_selector=f"{SELECTOR},{LABEL_WARM}=true,{LABEL_EXECUTION}={execution_id.hex}",
            _request_timeout=REQUEST_TIMEOUT_S,
        )
        for pod in claimed.items:
            name = pod.metadata.name
            if await self.script_started(name):
                log.info("re-attaching to claimed warm pod", sandbox=name)
                sandbox = PodSandbox.for_run(self, name, spec, reattached=True)
                failure = await sandbox.wait_started()
                if failure is not None:
                    await self.cleanup(name)
                    return FailedSandbox(failure)
                return sandbox
            # Its worker died between the claim and the header: the script never ran, so it may run now.
            log.warning("claimed warm pod never got its header, starting the run afresh", sandbox=name)
            await self.cleanup(name)
        return await self.start_cold(spec, execution_id, image)

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
        if reattached and execution_id_of(pod) != execution_id:
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
        sandbox = PodSandbox.for_run(self, spec.name, spec, reattached=reattached)
        failure = await sandbox.wait_started()
        if failure is not None:
            await self.cleanup(spec.name)
            return FailedSandbox(failure)
        return sandbox

    async def start_warm(self, warm: WarmPod, spec: SandboxSpec, execution_id: UUID) -> PodSandbox | None:
        """Claim a warm pod for the run and send it the header; None (the pod deleted) when it cannot serve."""
        api = await self.api()
        patch = claim_patch(execution_id, spec.limits, self.settings, waited_s=warm.waited_s())
        warm.taken = True
        try:
            pod = await api.patch_namespaced_pod(warm.name, self.namespace, patch, _request_timeout=REQUEST_TIMEOUT_S)
        except (ApiException, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("warm pod not claimed", sandbox=warm.name, error=type(exc).__name__)
            await warm.discard()
            return None
        if pod_ended(pod):
            log.warning("warm pod ended while waiting", sandbox=warm.name, pod_reason=_reasons(pod))
            await warm.discard()
            return None
        sandbox = PodSandbox.for_run(self, warm.name, spec, reattached=False)
        sandbox.pod = pod
        run_header = header(spec, self.settings, pod_memory_mib=self.settings.limits.maximum.memory_mib)
        if not await sandbox.deliver_header(header_frame(run_header)):
            await warm.discard()  # its script never started: the run goes on in another pod
            return None
        return sandbox

    async def launch_warm(self, runtime_id: str) -> WarmPod | None:
        """A pod for the pool, made from settings alone, its harness up and waiting for a header."""
        image = self.settings.kubernetes.runtimes[runtime_id]
        warm = WarmPod(self, WARM_PREFIX + uuid.uuid4().hex)
        api = await self.api()
        try:
            pod = await api.create_namespaced_pod(
                self.namespace, build_warm_pod(warm.name, runtime_id, image, self.owner, self.settings)
            )
            await api.create_namespaced_config_map(self.namespace, build_warm_config_map(self.settings, pod))
            ready = await self.harness_ready(warm.name)
        except asyncio.CancelledError:
            # The pool is closing: nobody else would delete this pod.
            await asyncio.shield(warm.discard())
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
        _, failure = await self.wait_running(name)
        if failure is not None:
            return False
        async with asyncio.timeout(HARNESS_READY_TIMEOUT_S):
            response = await self.open_log(name, [("container", CONTAINER), ("follow", "true")])
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
        async with self._api_lock:
            for api_client in (self._ws_client, self.api_client):
                if api_client is not None:
                    await api_client.close()
            self._api = self._ws_api = self._ws_client = self.api_client = None

    async def cleanup(self, name: str) -> None:
        """Delete the pod and its ConfigMap now. Idempotent."""
        api = await self.api()
        body = client.V1DeleteOptions(grace_period_seconds=0, propagation_policy="Background")
        for delete in (api.delete_namespaced_pod, api.delete_namespaced_config_map):
            try:
                await delete(name, self.namespace, body=body, _request_timeout=REQUEST_TIMEOUT_S)
            except ApiException as exc:
                if exc.status != 404:
                    raise

    async def delete_unclaimed(self, pod: k8s.V1Pod) -> bool:
        """Delete a warm pod (and its ConfigMap) only if it has not changed since it was listed; whether it was.

        A claim changes the pod's resourceVersion, so a pod claimed in the meantime stays with its run.
        """
        api = await self.api()
        unchanged = client.V1Preconditions(uid=pod.metadata.uid, resource_version=pod.metadata.resource_version)
        body = client.V1DeleteOptions(grace_period_seconds=0, propagation_policy="Background", preconditions=unchanged)
        try:
            await api.delete_namespaced_pod(
                pod.metadata.name, self.namespace, body=body, _request_timeout=REQUEST_TIMEOUT_S
            )
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            raise
        await self.cleanup(pod.metadata.name)
        return True

    async def reap(self, keep: Callable[[UUID], Awaitable[bool]], alive: Callable[[str], Awaitable[bool]]) -> list[str]:
        """Delete the pods nobody will come back for.

        An execution's pod (cold, or warm and claimed) goes when `keep(execution_id)` is False or its
        deadline is long past. A warm pod no run has claimed goes when the worker whose pool made it is
        not `alive`, or its deadline has passed (the kubelet has ended it), unless it was claimed since
        the listing.
        """
        api = await self.api()
        pods = await api.list_namespaced_pod(
            self.namespace, label_selector=SELECTOR, _request_timeout=REQUEST_TIMEOUT_S
        )
        now = datetime.now(UTC)
        reaped: list[str] = []
        for pod in pods.items:
            execution_id = execution_id_of(pod)
            name = pod.metadata.name
            if name is None:
                continue
            created = pod.metadata.creation_timestamp or now
            deadline = created + timedelta(seconds=(pod.spec and pod.spec.active_deadline_seconds) or 0)
            if execution_id is not None:
                if now - deadline < REAP_AFTER_DEADLINE and await keep(execution_id):
                    continue
                await self.cleanup(name)
                log.info("execution pod reaped", sandbox=name, execution_id=str(execution_id))
            elif is_warm(pod):
                owner = owner_of(pod)
                if now < deadline and owner is not None and await alive(owner):
                    continue
                if not await self.delete_unclaimed(pod):
                    continue
                log.info("warm pod reaped", sandbox=name, owner=owner)
            else:
                continue
            reaped.append(name)
        return reaped

    async def wait_running(self, name: str) -> tuple[k8s.V1Pod | None, str | None]:
        """Wait until the pod's container runs (or already ended).

        Returns the pod as last seen, and a user-facing error if it never will run.
        """
        last: k8s.V1Pod | None = None
        timeout = self.settings.kubernetes.startup_allowance_s
        try:
            async with asyncio.timeout(timeout):
                async with contextlib.aclosing(self.pod_updates(name)) as updates:
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

    async def open_log(self, name: str, query: list[tuple[str, str]]) -> aiohttp.ClientResponse:
        """A streaming request for the pod's log (the caller reads and releases it)."""
        await self.api()
        assert self.api_client is not None
        response: aiohttp.ClientResponse = await self.api_client.call_api(
            "/api/v1/namespaces/{namespace}/pods/{name}/log",
            "GET",
            path_params={"namespace": self.namespace, "name": name},
            query_params=query,
            header_params={"Accept": LOG_ACCEPT},
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=aiohttp.ClientTimeout(connect=REQUEST_TIMEOUT_S, sock_connect=REQUEST_TIMEOUT_S),
        )
        return response

    async def pod_updates(self, name: str) -> AsyncGenerator[k8s.V1Pod | None]:
        """The pod now and after every change (None while it does not exist).

        List, then watch from the list's resourceVersion with a bounded server-side timeout, then
        watch again from the last version seen; when that version has expired (410 Gone), list again.
        """
        api = await self.api()
        selector = f"metadata.name={name}"
        while True:
            listed = await api.list_namespaced_pod(
                self.namespace, field_selector=selector, _request_timeout=REQUEST_TIMEOUT_S
            )
            yield listed.items[0] if listed.items else None
            version = listed.metadata.resource_version
            try:
                while True:
                    watch = Watch()
                    async with watch:
                        async for event in watch.stream(
                            api.list_namespaced_pod,
                            self.namespace,
                            field_selector=selector,
                            resource_version=version,
                            timeout_seconds=self.settings.kubernetes.watch_timeout_s,
                            _request_timeout=self.settings.kubernetes.watch_timeout_s + REQUEST_TIMEOUT_S,
                        ):
                            pod: k8s.V1Pod = event["object"]
                            version = pod.metadata.resource_version or version
                            yield None if event["type"] == "DELETED" else pod
            except ApiException as exc:
                if exc.status != 410:
                    raise
                log.info("pod watch expired, listing again", sandbox=name)


Stamp = tuple[datetime, int]
_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")


def stamp_key(text: str) -> Stamp:
    """A log line's RFC 3339 timestamp as (UTC second, nanoseconds): comparable, whatever its zone or digits."""
    match = _STAMP.fullmatch(text)
    if match is None:
        raise protocol.FrameError("log line without a timestamp")
    seconds, fraction, zone = match.groups()
    second = datetime.fromisoformat(seconds + ("+00:00" if zone == "Z" else zone)).astimezone(UTC)
    return second, int((fraction or "").ljust(9, "0"))


# The container runtime writes a long line to the pod log in pieces (containerd: 16 KiB by default), each
# with its own timestamp, and a follow with `timestamps` streams them back as they are: one line reads
# "T1 piece1T2 piece2\n". Harness frames of output are base64, in which no timestamp can appear.
_PIECE_STAMP = re.compile(rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) ")


def split_log_line(line: bytes) -> tuple[bytes, bytes]:
    """(timestamp, frame) of a line of a timestamped log follow, the pieces of a split frame joined again.

    A split frame gets its last piece's timestamp: a follow resumed from it cannot start inside the frame.
    """
    raw_stamp, _, frame = line.partition(b" ")
    if frame[:1] in (b"O", b"E", b"B"):
        parts = _PIECE_STAMP.split(frame)
        if len(parts) > 1:
            return parts[-2], b"".join(parts[0::2])
    return raw_stamp, frame


def container_state(pod: k8s.V1Pod | None) -> k8s.V1ContainerState | None:
    """The state of the execution's container, once the kubelet reported it."""
    statuses = (pod and pod.status and pod.status.container_statuses) or []
    return next((status.state for status in statuses if status.name == CONTAINER), None)


def pod_ended(pod: k8s.V1Pod | None) -> bool:
    """Whether the pod is gone or its container has terminated."""
    state = container_state(pod)
    phase = pod.status.phase if pod is not None and pod.status is not None else None
    return pod is None or phase in ("Succeeded", "Failed") or (state is not None and state.terminated is not None)


def ending_of(
    pod: k8s.V1Pod | None,
    exit_frame: protocol.Exit | None,
    *,
    killed: bool,
    limit_hit: LimitKind | None,
    limits: Limits | None = None,
    platform_error: str | None = None,
) -> Ending:
    """What the pod's end looked like: the kubelet's account (OOMKilled, DeadlineExceeded) and the harness's."""
    state = container_state(pod)
    terminated = state.terminated if state is not None else None
    pod_reason = pod.status.reason if pod is not None and pod.status is not None else None
    return Ending(
        exit_frame,
        killed=killed,
        limit_hit=limit_hit,
        limits=limits,
        oom_killed=terminated is not None and terminated.reason == "OOMKilled",
        deadline_exceeded=pod_reason == "DeadlineExceeded",
        platform_error=platform_error,
    )


def classify(
    pod: k8s.V1Pod | None, exit_frame: protocol.Exit | None, *, killed: bool, limit_hit: LimitKind | None
) -> tuple[int | None, int | None, LimitKind | None, str | None]:
    """(exit code, signal, limit exceeded, platform error) of a pod, by the one classifier (ending.py)."""
    result = judge(ending_of(pod, exit_frame, killed=killed, limit_hit=limit_hit), SandboxUsage())
    return result.exit_code, result.signal, result.limit_exceeded, result.error


class WarmPod:
    """A pod the pool made ahead of its run: up, its harness waiting for a header on stdin."""

    def __init__(self, runner: KubernetesRunner, name: str) -> None:
        self.runner = runner
        self.name = name
        self.made = time.monotonic()
        self.taken = False

    def waited_s(self) -> float:
        """Seconds since the pod was asked for (at least its age as the kubelet counts it)."""
        return time.monotonic() - self.made

    def waiting(self) -> bool:
        """Whether it may still serve a run: not taken, and young enough that the run's deadline is below its own.

        Whether the pod is still up is learnt when it is claimed (the claim's answer has its status).
        """
        return not self.taken and self.waited_s() < self.runner.settings.kubernetes.warm_pool_max_wait_s

    async def discard(self) -> None:
        """Delete the pod and its ConfigMap."""
        self.taken = True
        with contextlib.suppress(ApiException, aiohttp.ClientError, TimeoutError):
            await self.runner.cleanup(self.name)


class PodSandbox:
    """One execution pod: its log is the harness's frame stream."""

    def __init__(
        self,
        runner: KubernetesRunner,
        name: str,
        limits: Limits,
        *,
        reattached: bool,
        stdin_in_header: bool = False,
        artifact_caps: ArtifactCaps = NO_ARTIFACTS,
    ) -> None:
        self.runner = runner
        self.name = name
        self.limits = limits
        self.frames = FrameReader(artifact_caps, on_ready=self._ready)
        self.reattached = reattached
        self.started = time.monotonic()
        self.ended: float | None = None
        self.ready = False
        self.killed = False
        self.limit_hit: LimitKind | None = None
        self.platform_error: str | None = None
        self.output_done = False
        self.pod: k8s.V1Pod | None = None
        self.wall_timer: asyncio.Task[None] | None = None
        # The resume point of the log follow: the last frame's timestamp and how many frames carried it.
        self.last_stamp: Stamp | None = None
        self.seen_at_last_stamp = 0
        # Stdin: closed from the start when the header carried it. `delivered` counts the bytes the pod
        # has had, by any worker (an earlier one's count comes from the pod's annotation); `seen` the
        # bytes this worker was asked to write: the control stream replays everything to a re-attaching
        # worker, and what the pod has had already is skipped.
        self.stdin_closed = stdin_in_header
        self.stdin_delivered = 0
        self.stdin_seen = 0
        # The log follow in progress: `kill` closes it, since the pod's log may go on after its deletion (the
        # kubelet stops a deleted pod's containers after a grace period of at least 2 s).
        self.follow: aiohttp.ClientResponse | None = None
        self.attach: aiohttp.ClientWebSocketResponse | None = None
        self.attach_reader: asyncio.Task[None] | None = None
        self.attach_lock = asyncio.Lock()

    @property
    def exit(self) -> protocol.Exit | None:
        """The harness's exit record, once it has come."""
        return self.frames.exit

    @classmethod
    def for_run(cls, runner: KubernetesRunner, name: str, spec: SandboxSpec, *, reattached: bool) -> PodSandbox:
        """The sandbox of the run `spec` in the pod `name`."""
        return cls(
            runner,
            name,
            spec.limits,
            reattached=reattached,
            stdin_in_header=spec.stdin is not None,
            artifact_caps=spec.artifact_caps,
        )

    async def wait_started(self) -> str | None:
        """Wait until the container runs (or already ended); a user-facing error if it never will."""
        self.pod, failure = await self.runner.wait_running(self.name)
        if self.pod is not None:
            self._stdin_progress(self.pod)
        return failure

    async def deliver_header(self, frame: bytes) -> bool:
        """Hand a claimed warm pod its header over the attach stream; the run's wall time counts from here.

        Tried once: after a failure the header may be partly in the pod, which then must not serve the run.
        """
        async with self.attach_lock:
            try:
                ws = await self._attached()
                for offset in range(0, len(frame), ATTACH_MESSAGE_BYTES):
                    await ws.send_bytes(bytes([STDIN_CHANNEL]) + frame[offset : offset + ATTACH_MESSAGE_BYTES])
            except (ApiException, aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
                log.warning("header not delivered to warm pod", sandbox=self.name, error=type(exc).__name__)
                await self._detach()
                return False
        self._ready()
        return True

    async def output(self) -> AsyncIterator[SandboxOutput]:
        """The script's output and artifacts from the pod log, until the harness's exit frame or the pod's end."""
        if self.output_done:
            return
        failures = 0
        ended = False
        try:
            while self.exit is None and not self.killed:
                new_frames = 0
                try:
                    async for line in self._follow_once():
                        new_frames += 1
                        failures = 0
                        if (output := self.frames.read(line)) is not None:
                            yield output
                        elif self.exit is not None:
                            break
                except (aiohttp.ClientError, TimeoutError, ApiException) as exc:
                    if self.killed:  # `kill` closed the follow
                        break
                    failures += 1
                    log.warning("pod log follow broke, resuming", sandbox=self.name, error=type(exc).__name__)
                    if failures > MAX_RESUMES:
                        self.platform_error = CONNECTION_LOST
                        break
                if self.exit is not None or self.killed:
                    break
                # The log ended without an exit frame: the container was killed (OOM, deadline), or the
                # follow broke. Once the pod has ended, one more pass picks up frames a break hid.
                if ended and new_frames == 0:
                    break
                ended = pod_ended(await self._read_pod())
                await asyncio.sleep(0 if ended else RESUME_PAUSE_S * min(failures + 1, 10))
        except (ValueError, UnicodeDecodeError) as exc:  # FrameError, or a line over the reader's limit
            if not self.killed:
                log.exception("malformed frame from pod", sandbox=self.name, error=type(exc).__name__)
                self.platform_error = PROTOCOL_BROKEN
        except (ApiException, aiohttp.ClientError) as exc:
            log.exception("pod unreachable", sandbox=self.name, error=type(exc).__name__)
            self.platform_error = CONNECTION_LOST
        finally:
            self.output_done = True
        if self.platform_error is not None:
            await self.kill()

    async def _follow_once(self) -> AsyncGenerator[bytes]:
        """One `follow` request from the resume point; yields only frames not seen before."""
        query: list[tuple[str, str]] = [("container", CONTAINER), ("follow", "true"), ("timestamps", "true")]
        if self.last_stamp is not None:
            # sinceTime has whole seconds: ask from the second of the last frame and skip what we had.
            query.append(("sinceTime", self.last_stamp[0].strftime("%Y-%m-%dT%H:%M:%SZ")))
        response = await self.runner.open_log(self.name, query)
        resume_at, skip = self.last_stamp, self.seen_at_last_stamp
        self.follow = response
        try:
            if response.status != 200:
                raise ApiException(status=response.status, reason=response.reason)
            while line := await response.content.readline():
                if not line.endswith(b"\n"):
                    raise aiohttp.ClientPayloadError("log line cut short")
                raw_stamp, frame = split_log_line(line)
                stamp = stamp_key(raw_stamp.decode("ascii"))
                # Asked from the whole second: skip what came before, and the frames already taken
                # that share the resume point's timestamp.
                if resume_at is not None and (stamp < resume_at or (stamp == resume_at and skip > 0)):
                    skip -= stamp == resume_at
                    continue
                if stamp == self.last_stamp:
                    self.seen_at_last_stamp += 1
                else:
                    self.last_stamp, self.seen_at_last_stamp = stamp, 1
                yield frame
        finally:
            self.follow = None
            response.release()

    def _ready(self) -> None:
        """The harness is up: the wall limit counts from here, never from image pull or scheduling."""
        if self.ready:
            return
        self.ready = True
        self.started = time.monotonic()
        self.wall_timer = asyncio.create_task(self._enforce_wall_time(), name="wall-time")

    async def _enforce_wall_time(self) -> None:
        await asyncio.sleep(self.limits.wall_time_ms / 1000)
        self.limit_hit = LimitKind.WALL_TIME
        self.ended = time.monotonic()
        log.info("wall time limit reached", sandbox=self.name)
        await self.kill()

    async def _read_pod(self) -> k8s.V1Pod | None:
        api = await self.runner.api()
        try:
            self.pod = await api.read_namespaced_pod(
                self.name, self.runner.namespace, _request_timeout=REQUEST_TIMEOUT_S
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.pod = None
        return self.pod

    def _stdin_progress(self, pod: k8s.V1Pod) -> None:
        """What an earlier worker delivered to this pod's stdin, from its annotations (a re-attach)."""
        if not self.reattached:
            return
        annotations = (pod.metadata and pod.metadata.annotations) or {}
        with contextlib.suppress(ValueError):
            self.stdin_delivered = max(0, int(annotations.get(ANNOTATION_STDIN_DELIVERED, "0")))
        if annotations.get(ANNOTATION_STDIN_CLOSED) == "true":
            self.stdin_closed = True

    async def write_stdin(self, data: bytes) -> None:
        """Forward input to the script over pods/attach, in `I` frames of a bounded size."""
        async with self.attach_lock:
            if self.stdin_closed or self.killed or self.exit is not None:
                return
            skip = max(0, self.stdin_delivered - self.stdin_seen)  # replayed: the pod had it already
            self.stdin_seen += len(data)
            data = data[skip:]
            if not data:
                return
            for offset in range(0, len(data), STDIN_FRAME_BYTES):
                if not await self._send(
                    protocol.encode_frame(protocol.INPUT, data[offset : offset + STDIN_FRAME_BYTES])
                ):
                    log.warning("input not delivered to pod", sandbox=self.name, bytes=len(data) - offset)
                    return
            self.stdin_delivered += len(data)
            await self._record_stdin({ANNOTATION_STDIN_DELIVERED: str(self.stdin_delivered)})

    async def close_stdin(self) -> None:
        """Ask the harness to close the script's stdin (a `C` frame over pods/attach)."""
        async with self.attach_lock:
            if self.stdin_closed or self.killed or self.exit is not None:
                return
            self.stdin_closed = True
            if not await self._send(protocol.encode_frame(protocol.CLOSE)):
                log.warning("stdin close not delivered to pod", sandbox=self.name)
                return
            await self._record_stdin({ANNOTATION_STDIN_CLOSED: "true"})

    async def _send(self, frame: bytes) -> bool:
        """Send one frame on the attach stream's stdin channel, attaching (again) as needed."""
        for attempt in range(ATTACH_ATTEMPTS):
            if self.killed or self.exit is not None:
                return False
            try:
                ws = await self._attached()
                await ws.send_bytes(bytes([STDIN_CHANNEL]) + frame)
                return True
            except (ApiException, aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
                log.warning("pod attach failed", sandbox=self.name, attempt=attempt + 1, error=type(exc).__name__)
                await self._detach()
                await asyncio.sleep(RESUME_PAUSE_S * attempt)
        return False

    async def _attached(self) -> aiohttp.ClientWebSocketResponse:
        """The open attach WebSocket to the container's stdin (stdin only: output comes from the log)."""
        if self.attach is not None and not self.attach.closed:
            return self.attach
        api = await self.runner.ws_api()
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            # With _preload_content=False, WsApiClient returns aiohttp's ws_connect (typed as str here).
            connecting: Awaitable[aiohttp.ClientWebSocketResponse] = await api.connect_get_namespaced_pod_attach(  # type: ignore[assignment]
                self.name,
                self.runner.namespace,
                container=CONTAINER,
                stdin=True,
                stdout=False,
                stderr=False,
                tty=False,
                _preload_content=False,
            )
            ws = await connecting
        self.attach = ws
        self.attach_reader = asyncio.create_task(self._read_attach(ws), name="pod-attach")
        log.info("attached to pod stdin", sandbox=self.name)
        return ws

    async def _read_attach(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Read what the server sends on the attach stream (its status at the end), so pings and closes are seen."""
        with contextlib.suppress(aiohttp.ClientError, ConnectionError):
            async for message in ws:
                data = message.data if message.type == aiohttp.WSMsgType.BINARY else b""
                if data[:1] == bytes([ERROR_CHANNEL]) and len(data) > 1:
                    log.info("pod attach ended", sandbox=self.name, status=data[1:].decode(errors="replace"))

    async def _detach(self) -> None:
        ws, reader = self.attach, self.attach_reader
        self.attach = self.attach_reader = None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if ws is not None:
            with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                await ws.close()

    async def _record_stdin(self, annotations: dict[str, str]) -> None:
        """Note on the pod how much input it has had, for a worker that re-attaches after this one."""
        api = await self.runner.api()
        try:
            await api.patch_namespaced_pod(
                self.name,
                self.runner.namespace,
                {"metadata": {"annotations": annotations}},
                _request_timeout=REQUEST_TIMEOUT_S,
            )
        except (ApiException, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("stdin progress not recorded", sandbox=self.name, error=type(exc).__name__)

    async def kill(self) -> None:
        """Delete the pod now (grace period 0). Idempotent."""
        if self.killed:
            return
        self.killed = True
        self.ended = self.ended or time.monotonic()
        with contextlib.suppress(ApiException, aiohttp.ClientError):
            await self.runner.cleanup(self.name)
        if self.follow is not None:
            self.follow.close()
        await self._detach()

    async def wait(self) -> SandboxResult:
        """Wait for the pod's end, classify it, and delete the pod and its ConfigMap."""
        if not self.output_done:
            async for _ in self.output():
                pass
        self.ended = self.ended or time.monotonic()
        if self.wall_timer is not None:
            self.wall_timer.cancel()
        await self._detach()
        if not self.killed:
            await self._final_state()
        ending = ending_of(
            self.pod,
            self.exit,
            killed=self.killed,
            limit_hit=self.limit_hit,
            limits=self.limits,
            platform_error=self.platform_error,
        )
        if self.exit is not None and self.exit.error is not None:
            log.error("sandbox harness failed", sandbox=self.name, error=self.exit.error)
        with contextlib.suppress(ApiException, aiohttp.ClientError):
            await self.runner.cleanup(self.name)
        usage = SandboxUsage(
            wall_time_ms=self.exit.wall_ms if self.exit is not None else int((self.ended - self.started) * 1000),
            cpu_time_ms=self.exit.cpu_ms if self.exit is not None else None,
            peak_memory_kib=self.exit.peak_rss_kib if self.exit is not None else None,
        )
        result = judge(ending, usage)
        if result.error is not None:
            log.error("sandbox failed", sandbox=self.name, error=result.error, pod_reason=_reasons(self.pod))
        return result

    async def _final_state(self) -> None:
        """Wait (bounded) until the kubelet has reported how the container ended."""
        try:
            async with asyncio.timeout(FINAL_STATE_TIMEOUT_S):
                async with contextlib.aclosing(self.runner.pod_updates(self.name)) as updates:
                    async for pod in updates:
                        if pod is None:
                            return
                        self.pod = pod
                        if pod_ended(pod):
                            return
        except (TimeoutError, ApiException, aiohttp.ClientError) as exc:
            log.warning("final pod state unknown", sandbox=self.name, error=type(exc).__name__)


def _reasons(pod: k8s.V1Pod | None) -> dict[str, str | None]:
    state = container_state(pod)
    terminated = state.terminated if state is not None else None
    return {
        "pod": pod.status.reason if pod is not None and pod.status is not None else None,
        "container": terminated.reason if terminated is not None else None,
    }
