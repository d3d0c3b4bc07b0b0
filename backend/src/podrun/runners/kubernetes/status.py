"""What the kubelet says of a pod: its container's state, whether it ended, and how (for the classifier)."""

from __future__ import annotations

from kubernetes_asyncio.client import models as k8s

from podrun.core.limits import LimitKind, Limits
from podrun.runners import protocol
from podrun.runners.base import SandboxUsage
from podrun.runners.ending import Ending
from podrun.runners.ending import classify as judge
from podrun.runners.kubernetes.pod import CONTAINER


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


def reasons(pod: k8s.V1Pod | None) -> dict[str, str | None]:
    """The pod's and its container's reasons, for logs."""
    state = container_state(pod)
    terminated = state.terminated if state is not None else None
    return {
        "pod": pod.status.reason if pod is not None and pod.status is not None else None,
        "container": terminated.reason if terminated is not None else None,
    }
