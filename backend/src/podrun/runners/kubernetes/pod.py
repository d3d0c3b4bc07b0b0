"""The execution pod and its ConfigMap, built from typed API objects.

How the script reaches the pod: the runner writes the harness's header frame (script, initial stdin
and limits, JSON-encoded by `frames.header_frame`) as one value of a ConfigMap that the pod owns,
next to the harness and the modules it imports (bundle.py). The pod's command is a constant: the
harness reads its header from that file, then further frames from the container's own stdin
(`stdin: true`), which the runner reaches through the pods/attach API to send `I` (input) and `C`
(close) frames for interactive runs. User data therefore only ever lands in a ConfigMap *value* or
on the attach stream; every field of the pod spec comes from settings, the execution id (a UUID)
and the runtime catalog, never from user text.

A warm pod is the same pod made before any run is known: from settings and the runtime catalog only,
at the largest limits, with a ConfigMap holding just the harness (and its modules), which waits for its header on
stdin. A run claims it with one patch (`claim_patch`): the execution id label, and a deadline that
only ever shortens; the header then comes over the attach stream. Its spec never holds user data.
"""

from __future__ import annotations

import math
from typing import Any
from uuid import UUID

from kubernetes_asyncio.client import models as k8s

from podrun.core.limits import Limits
from podrun.runners import protocol
from podrun.runners.base import SandboxSpec
from podrun.runners.bundle import HARNESS, harness_files
from podrun.runners.frames import header_for, header_frame
from podrun.settings import Settings

CONTAINER = "script"
MOUNT_DIR = "/podrun"
SHM_DIR = "/dev/shm"  # noqa: S108 - the pod's own, a memory-backed emptyDir
HEADER_KEY = "header"
HARNESS_KEY = HARNESS
# A constant: the harness, as the container's PID 1 (so the script cannot signal it), reads its header
# from the ConfigMap's file and further frames from the container's stdin (the attach stream).
COMMAND = ["python3", "-I", f"{MOUNT_DIR}/{HARNESS_KEY}", "--header", f"{MOUNT_DIR}/{HEADER_KEY}"]
# A warm pod's harness reads its header from stdin too, once a run has claimed the pod.
WARM_COMMAND = ["python3", "-I", f"{MOUNT_DIR}/{HARNESS_KEY}"]
# Nothing of the worker's environment: the sandbox's fixed, minimal set.
ENVIRONMENT = protocol.SANDBOX_ENV

LABEL_APP = "app.kubernetes.io/name"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_EXECUTION = "podrun.dev/execution-id"
# A kernel's pod carries its kernel's id instead (kernels/session.py names it KERNEL_PREFIX + the id's hex).
LABEL_KERNEL = "podrun.dev/kernel-id"
KERNEL_PREFIX = "podrun-kernel-"
# On warm pods: "true", the runtime, and the worker whose pool keeps the pod until a run claims it.
LABEL_WARM = "podrun.dev/warm"
LABEL_RUNTIME = "podrun.dev/runtime"
LABEL_OWNER = "podrun.dev/owner"
WARM_PREFIX = "podrun-warm-"
# Set by the runner as it delivers input over pods/attach: bytes delivered, and whether stdin was closed.
ANNOTATION_STDIN_DELIVERED = "podrun.dev/stdin-delivered"
ANNOTATION_STDIN_CLOSED = "podrun.dev/stdin-closed"
APP = "podrun-execution"
MANAGER = "podrun"
SELECTOR = f"{LABEL_APP}={APP},{LABEL_MANAGED_BY}={MANAGER}"
# What the writable /tmp may hold beyond the script's own files (the script is written there too).
EPHEMERAL_MARGIN_MIB = 16
TERMINATION_GRACE_S = 1
# A kernel's pod outlives its cells: the cluster ends it this long after the kernel's longest life.
KERNEL_DEADLINE_MARGIN_S = 600


def is_kernel(name: str) -> bool:
    """Whether a sandbox name is a kernel's (its cells' limits are the harness's, its life the kernel's)."""
    return name.startswith(KERNEL_PREFIX)


def id_from_name(name: str) -> UUID:
    """The execution's or the kernel's id inside a sandbox name (see `base.sandbox_name`, `kernel_sandbox_name`)."""
    return UUID(hex=name.removeprefix(KERNEL_PREFIX if is_kernel(name) else "podrun-"))


def id_label(name: str) -> str:
    """The label that carries the id of the pod `name`'s execution or kernel."""
    return LABEL_KERNEL if is_kernel(name) else LABEL_EXECUTION


def labels(execution_id: UUID, *, kernel: bool = False) -> dict[str, str]:
    """The labels that identify an execution's (or a kernel's) pod and ConfigMap."""
    return {LABEL_APP: APP, LABEL_MANAGED_BY: MANAGER, LABEL_KERNEL if kernel else LABEL_EXECUTION: execution_id.hex}


def warm_labels(runtime_id: str, owner: str) -> dict[str, str]:
    """The labels of a warm pod: an execution pod (the same NetworkPolicy selects it) of no execution yet."""
    return {
        LABEL_APP: APP,
        LABEL_MANAGED_BY: MANAGER,
        LABEL_WARM: "true",
        LABEL_RUNTIME: runtime_id,
        LABEL_OWNER: owner,
    }


def is_warm(pod: k8s.V1Pod) -> bool:
    """Whether the pod was made ahead of its run (claimed or not)."""
    return ((pod.metadata and pod.metadata.labels) or {}).get(LABEL_WARM) == "true"


def owner_of(pod: k8s.V1Pod) -> str | None:
    """The worker whose warm pool made the pod."""
    return ((pod.metadata and pod.metadata.labels) or {}).get(LABEL_OWNER)


def execution_id_of(pod: k8s.V1Pod, label: str = LABEL_EXECUTION) -> UUID | None:
    """The execution a pod belongs to (its kernel, with `label=LABEL_KERNEL`), from its label; None for others."""
    value = ((pod.metadata and pod.metadata.labels) or {}).get(label)
    try:
        return UUID(hex=value) if value else None
    except ValueError:
        return None


def header(spec: SandboxSpec, settings: Settings, *, pod_memory_mib: int | None = None) -> protocol.Header:
    """What the harness runs. Processes and file size are rlimits; memory is the pod's cgroup limit.

    A warm pod's cgroup has the largest memory limit (`pod_memory_mib`): a run that asked for less gets
    its own as an address-space rlimit, with the cgroup as the backstop.
    """
    memory_bytes = spec.limits.memory_mib * 1024 * 1024
    return header_for(
        spec,
        # Stdin given at submission: all of it is in the header, then EOF (no attach needed). Without,
        # the script's stdin stays open for input that comes over pods/attach.
        stdin_eof=spec.stdin is not None,
        memory_bytes=memory_bytes if pod_memory_mib is not None and spec.limits.memory_mib < pod_memory_mib else None,
        processes=spec.limits.processes,
        # The pod's /tmp is on the node's disk, whose emptyDir size the kubelet checks only now and then: no
        # file may outgrow it at once. (/dev/shm is a memory-backed emptyDir the kernel caps exactly.)
        file_size_bytes=max(settings.sandbox.tmp_mib, settings.sandbox.shm_mib) * 1024 * 1024,
    )


def build_config_map(spec: SandboxSpec, execution_id: UUID, settings: Settings, owner: k8s.V1Pod) -> k8s.V1ConfigMap:
    """The ConfigMap carrying the harness and the header; owned by the pod, so it goes when the pod goes."""
    frame = header_frame(header(spec, settings)).decode("ascii")
    config_map_labels = labels(execution_id, kernel=spec.kernel)
    return _config_map(config_map_labels, {**shipped_files(), HEADER_KEY: frame}, settings, owner)


def build_warm_config_map(settings: Settings, owner: k8s.V1Pod) -> k8s.V1ConfigMap:
    """A warm pod's ConfigMap: the harness alone (the header comes over the attach stream); owned by the pod."""
    assert owner.metadata is not None
    return _config_map(owner.metadata.labels or {}, shipped_files(), settings, owner)


def shipped_files() -> dict[str, str]:
    """The harness and its modules as ConfigMap values (keys are their file names, the pod's paths)."""
    return {name: content.decode("utf-8") for name, content in harness_files().items()}


def _config_map(
    config_map_labels: dict[str, str], data: dict[str, str], settings: Settings, owner: k8s.V1Pod
) -> k8s.V1ConfigMap:
    assert owner.metadata is not None
    return k8s.V1ConfigMap(
        api_version="v1",
        kind="ConfigMap",
        metadata=k8s.V1ObjectMeta(
            name=owner.metadata.name,
            namespace=settings.kubernetes.namespace,
            labels=config_map_labels,
            owner_references=[
                k8s.V1OwnerReference(
                    api_version="v1", kind="Pod", name=owner.metadata.name, uid=owner.metadata.uid, controller=True
                )
            ],
        ),
        data=data,
        immutable=True,
    )


def resources(limits: Limits, settings: Settings) -> k8s.V1ResourceRequirements:
    """Requests equal limits for memory and storage (no overcommit); CPU from settings."""
    memory = f"{limits.memory_mib}Mi"
    storage = f"{settings.sandbox.tmp_mib + EPHEMERAL_MARGIN_MIB}Mi"
    return k8s.V1ResourceRequirements(
        requests={"cpu": settings.kubernetes.cpu_request, "memory": memory, "ephemeral-storage": storage},
        limits={"cpu": settings.kubernetes.cpu_limit, "memory": memory, "ephemeral-storage": storage},
    )


def active_deadline_s(limits: Limits, settings: Settings, *, waited_s: float = 0) -> int:
    """The cluster's backstop: the wall limit plus the start-up allowance (image pull, scheduling).

    The runner itself enforces the exact wall limit from the moment the harness is ready; this
    deadline only ends pods nobody watches any more (a worker that died and never came back). A warm
    pod's deadline, counted from its start like any pod's, adds the time it `waited_s` for its run.
    """
    return math.ceil(waited_s) + -(-limits.wall_time_ms // 1000) + settings.kubernetes.startup_allowance_s


def kernel_deadline_s(settings: Settings) -> int:
    """A kernel pod's deadline: no wall limit of its own (each cell's is the harness's), a backstop past its life."""
    return settings.kernels.max_lifetime_s + KERNEL_DEADLINE_MARGIN_S + settings.kubernetes.startup_allowance_s


def warm_deadline_s(settings: Settings) -> int:
    """A waiting warm pod's deadline: claimed by then or ended by the kubelet, worker or not."""
    return active_deadline_s(settings.limits.maximum, settings, waited_s=settings.kubernetes.warm_pool_max_wait_s)


def claim_patch(
    execution_id: UUID, limits: Limits, settings: Settings, *, waited_s: float, kernel: bool = False
) -> dict[str, Any]:
    """The one change a claim makes to a warm pod: the execution's (or kernel's) label, and its (shorter) deadline.

    The API server accepts a deadline only ever lowered, and the pod's pool hands out no pod that
    waited `warm_pool_max_wait_s`, so a run's deadline is always below the warm one; a kernel takes a
    warm pod only when its deadline is below the warm one too (`serves_kernels`).
    """
    deadline_s = kernel_deadline_s(settings) if kernel else active_deadline_s(limits, settings, waited_s=waited_s)
    return {
        "metadata": {"labels": {LABEL_KERNEL if kernel else LABEL_EXECUTION: execution_id.hex}},
        "spec": {"activeDeadlineSeconds": deadline_s},
    }


def serves_kernels(settings: Settings) -> bool:
    """Whether warm pods may hold kernels: a claim may only lower their deadline, so it must be a kernel's at least.

    With the default settings it is not (a warm pod waits minutes, a kernel lives hours): kernels start cold.
    """
    return kernel_deadline_s(settings) <= warm_deadline_s(settings)


def seccomp_profile(settings: Settings) -> k8s.V1SeccompProfile:
    """Podrun's own filter where the nodes have it installed (the local sandbox's rules), else the runtime's."""
    if settings.kubernetes.seccomp_profile is None:
        return k8s.V1SeccompProfile(type="RuntimeDefault")
    return k8s.V1SeccompProfile(type="Localhost", localhost_profile=settings.kubernetes.seccomp_profile)


def build_pod(spec: SandboxSpec, execution_id: UUID, image: str, settings: Settings) -> k8s.V1Pod:
    """The hardened pod of one execution (Pod Security Standards "restricted" and more)."""
    deadline_s = kernel_deadline_s(settings) if spec.kernel else active_deadline_s(spec.limits, settings)
    return _pod(
        spec.name,
        labels(execution_id, kernel=spec.kernel),
        COMMAND,
        spec.limits,
        deadline_s=deadline_s,
        image=image,
        settings=settings,
    )


def build_warm_pod(name: str, runtime_id: str, image: str, owner: str, settings: Settings) -> k8s.V1Pod:
    """A pod for a run not known yet: the same hardened pod at the largest limits, waiting for its header."""
    deadline_s = warm_deadline_s(settings)
    return _pod(
        name,
        warm_labels(runtime_id, owner),
        WARM_COMMAND,
        settings.limits.maximum,
        deadline_s=deadline_s,
        image=image,
        settings=settings,
    )


def _pod(
    name: str,
    pod_labels: dict[str, str],
    command: list[str],
    limits: Limits,
    *,
    deadline_s: int,
    image: str,
    settings: Settings,
) -> k8s.V1Pod:
    uid = settings.kubernetes.run_as_uid
    container = k8s.V1Container(
        name=CONTAINER,
        image=image,
        image_pull_policy=settings.kubernetes.image_pull_policy,
        command=list(command),
        stdin=True,
        stdin_once=False,
        tty=False,
        env=[k8s.V1EnvVar(name=variable, value=value) for variable, value in ENVIRONMENT.items()],
        working_dir=protocol.SANDBOX_TMP,
        resources=resources(limits, settings),
        security_context=k8s.V1SecurityContext(
            run_as_non_root=True,
            run_as_user=uid,
            run_as_group=uid,
            read_only_root_filesystem=True,
            allow_privilege_escalation=False,
            privileged=False,
            capabilities=k8s.V1Capabilities(drop=["ALL"]),
            seccomp_profile=seccomp_profile(settings),
        ),
        volume_mounts=[
            k8s.V1VolumeMount(name="podrun", mount_path=MOUNT_DIR, read_only=True),
            k8s.V1VolumeMount(name="tmp", mount_path=protocol.SANDBOX_TMP),
            k8s.V1VolumeMount(name="shm", mount_path=SHM_DIR),
        ],
        termination_message_policy="File",
    )
    return k8s.V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=k8s.V1ObjectMeta(name=name, namespace=settings.kubernetes.namespace, labels=pod_labels),
        spec=k8s.V1PodSpec(
            containers=[container],
            restart_policy="Never",
            active_deadline_seconds=deadline_s,
            termination_grace_period_seconds=TERMINATION_GRACE_S,
            automount_service_account_token=False,
            enable_service_links=False,
            host_network=False,
            host_pid=False,
            host_ipc=False,
            host_users=False if settings.kubernetes.user_namespaces else None,
            runtime_class_name=settings.kubernetes.runtime_class,
            node_selector=dict(settings.kubernetes.node_selector) or None,
            tolerations=[
                k8s.V1Toleration(
                    key=t.get("key"), operator=t.get("operator"), value=t.get("value"), effect=t.get("effect")
                )
                for t in settings.kubernetes.tolerations
            ]
            or None,
            security_context=k8s.V1PodSecurityContext(
                run_as_non_root=True,
                run_as_user=uid,
                run_as_group=uid,
                fs_group=uid,
                seccomp_profile=seccomp_profile(settings),
            ),
            volumes=[
                k8s.V1Volume(
                    name="podrun",
                    config_map=k8s.V1ConfigMapVolumeSource(name=name, default_mode=0o444, optional=False),
                ),
                k8s.V1Volume(
                    name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit=f"{settings.sandbox.tmp_mib}Mi")
                ),
                # A tmpfs of its own size (not the runtime's shared 64 MiB one), counted in the container's memory.
                k8s.V1Volume(
                    name="shm",
                    empty_dir=k8s.V1EmptyDirVolumeSource(medium="Memory", size_limit=f"{settings.sandbox.shm_mib}Mi"),
                ),
            ],
        ),
    )
