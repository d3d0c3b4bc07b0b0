"""How a pod ended, read from the kubelet's container state and the harness's exit frame."""

from __future__ import annotations

import signal
from datetime import UTC, datetime

import pytest
from kubernetes_asyncio.client import models as k8s

from podrun.core.limits import LimitKind
from podrun.runners import protocol
from podrun.runners.ending import ENDED_UNEXPECTEDLY, START_FAILED
from podrun.runners.kubernetes.logs import stamp_key
from podrun.runners.kubernetes.pod import CONTAINER
from podrun.runners.kubernetes.status import classify, pod_ended


def pod(
    reason: str | None = None, exit_code: int = 0, pod_reason: str | None = None, phase: str = "Failed"
) -> k8s.V1Pod:
    terminated = k8s.V1ContainerStateTerminated(exit_code=exit_code, reason=reason)
    status = k8s.V1ContainerStatus(
        name=CONTAINER,
        image="i",
        image_id="",
        ready=False,
        restart_count=0,
        state=k8s.V1ContainerState(terminated=terminated),
    )
    return k8s.V1Pod(status=k8s.V1PodStatus(phase=phase, reason=pod_reason, container_statuses=[status]))


def exit_frame(exit_code: int | None = 0, sig: int | None = None, error: str | None = None) -> protocol.Exit:
    return protocol.Exit(exit_code=exit_code, signal=sig, wall_ms=5, cpu_ms=3, peak_rss_kib=100, error=error)


@pytest.mark.parametrize(
    ("ended", "frame", "killed", "limit", "expected"),
    [
        (pod("Completed", phase="Succeeded"), exit_frame(0), False, None, (0, None, None, None)),
        (pod("Error", 1), exit_frame(1), False, None, (1, None, None, None)),
        (pod("OOMKilled", 137), exit_frame(None, 9), False, None, (None, signal.SIGKILL, LimitKind.MEMORY, None)),
        (pod("OOMKilled", 137), None, False, None, (None, signal.SIGKILL, LimitKind.MEMORY, None)),
        (pod(pod_reason="DeadlineExceeded"), None, False, None, (None, signal.SIGKILL, LimitKind.WALL_TIME, None)),
        (pod("Error", 1), exit_frame(None, signal.SIGXCPU), False, None, (None, 24, LimitKind.CPU_TIME, None)),
        (pod("Error", 1), exit_frame(None, error="boom"), False, None, (None, None, None, START_FAILED)),
        (pod("Error", 137), None, True, LimitKind.WALL_TIME, (None, signal.SIGKILL, LimitKind.WALL_TIME, None)),
        (pod("Error", 137), None, True, None, (None, signal.SIGKILL, None, None)),
        (None, None, False, None, (None, None, None, ENDED_UNEXPECTEDLY)),
    ],
    ids=["ok", "exit-1", "oom", "oom-no-frame", "deadline", "cpu", "harness-error", "wall", "killed", "vanished"],
)
def test_the_kubelet_wins_where_it_has_a_verdict_else_the_harness(
    ended: k8s.V1Pod | None,
    frame: protocol.Exit | None,
    killed: bool,
    limit: LimitKind | None,
    expected: tuple[int | None, int | None, LimitKind | None, str | None],
) -> None:
    assert classify(ended, frame, killed=killed, limit_hit=limit) == expected


def test_a_pod_has_ended_when_gone_finished_or_its_container_terminated() -> None:
    running = k8s.V1Pod(status=k8s.V1PodStatus(phase="Running"))
    assert (pod_ended(None), pod_ended(pod(phase="Running")), pod_ended(running)) == (True, True, False)


def test_log_timestamps_compare_across_zones_and_precision() -> None:
    assert stamp_key("2026-11-30T10:00:00.5Z") == (datetime(2026, 11, 30, 10, tzinfo=UTC), 500_000_000)
    assert stamp_key("2026-11-30T11:00:00.500000000+01:00") == stamp_key("2026-11-30T10:00:00.5Z")
    with pytest.raises(protocol.FrameError):
        stamp_key("no timestamp")
