"""Classifying how a sandbox ended into the status its run records."""

from __future__ import annotations

import signal

import pytest

from podrun.core.limits import LimitKind
from podrun.core.statuses import ExecutionStatus
from podrun.executions.outcomes import Outcome, classify
from podrun.runners.base import SandboxResult, SandboxUsage

USAGE = SandboxUsage(wall_time_ms=120, cpu_time_ms=80, peak_memory_kib=4096)


def result(
    exit_code: int | None = 0, sig: int | None = None, limit: LimitKind | None = None, error: str | None = None
) -> SandboxResult:
    return SandboxResult(exit_code=exit_code, signal=sig, limit_exceeded=limit, usage=USAGE, error=error)


@pytest.mark.parametrize(
    ("ended", "expected"),
    [
        (result(0), Outcome(ExecutionStatus.SUCCEEDED, exit_code=0, usage=USAGE)),
        (result(3), Outcome(ExecutionStatus.FAILED, exit_code=3, usage=USAGE)),
        (result(None, signal.SIGSEGV), Outcome(ExecutionStatus.FAILED, signal=signal.SIGSEGV, usage=USAGE)),
        (
            result(None, signal.SIGKILL, LimitKind.WALL_TIME),
            Outcome(ExecutionStatus.TIMED_OUT, signal=signal.SIGKILL, limit_exceeded=LimitKind.WALL_TIME, usage=USAGE),
        ),
        (
            result(None, signal.SIGXCPU, LimitKind.CPU_TIME),
            Outcome(ExecutionStatus.TIMED_OUT, signal=signal.SIGXCPU, limit_exceeded=LimitKind.CPU_TIME, usage=USAGE),
        ),
        (
            result(None, signal.SIGKILL, LimitKind.MEMORY),
            Outcome(ExecutionStatus.FAILED, signal=signal.SIGKILL, limit_exceeded=LimitKind.MEMORY, usage=USAGE),
        ),
        (
            result(0, None, LimitKind.PROCESSES),
            # Caught and exited 0: it succeeded, and the limit it hit is named (the classifier's rule, docs).
            Outcome(ExecutionStatus.SUCCEEDED, exit_code=0, limit_exceeded=LimitKind.PROCESSES, usage=USAGE),
        ),
        (
            result(1, None, LimitKind.PROCESSES),
            Outcome(ExecutionStatus.FAILED, exit_code=1, limit_exceeded=LimitKind.PROCESSES, usage=USAGE),
        ),
        (
            result(None, None, LimitKind.MEMORY, error="The sandbox could not be started."),
            Outcome(ExecutionStatus.ERROR, error="The sandbox could not be started.", usage=USAGE),
        ),
    ],
    ids=["exit-0", "exit-3", "signal", "wall", "cpu", "memory", "processes-caught", "processes", "platform-error"],
)
def test_a_sandbox_result_becomes_an_outcome(ended: SandboxResult, expected: Outcome) -> None:
    assert classify(ended, cancelled=False, output_truncated=False) == expected


def test_cancel_wins_over_everything_and_clears_the_limit() -> None:
    outcome = classify(result(None, signal.SIGKILL, LimitKind.WALL_TIME), cancelled=True, output_truncated=True)
    assert (outcome.status, outcome.limit_exceeded, outcome.output_truncated) == (ExecutionStatus.CANCELLED, None, True)


def test_the_output_cap_fails_the_run_with_output_even_when_it_exited_cleanly() -> None:
    outcome = classify(result(0), cancelled=False, output_truncated=True)
    assert (outcome.status, outcome.limit_exceeded, outcome.output_truncated) == (
        ExecutionStatus.FAILED,
        LimitKind.OUTPUT,
        True,
    )
