"""How a run ended: the sandbox's result, classified into the status and fields its row records."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from podrun.core.limits import LimitKind
from podrun.core.statuses import ExecutionStatus
from podrun.runners.base import SandboxResult, SandboxUsage

LOST_WORKER_ERROR = "the worker running this execution stopped unexpectedly"
SHUTDOWN_ERROR = "the worker shut down before the run finished"
PLATFORM_ERROR = "the sandbox failed; please try again"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended, as recorded on its row."""

    status: ExecutionStatus
    exit_code: int | None = None
    signal: int | None = None
    limit_exceeded: LimitKind | None = None
    error: str | None = None
    usage: SandboxUsage = field(default_factory=SandboxUsage)
    output_truncated: bool = False


def classify(result: SandboxResult, *, cancelled: bool, output_truncated: bool) -> Outcome:
    """The outcome of a sandbox that ended: cancelled, cut at the output cap, an error, timed out, done or failed."""
    ended = Outcome(
        ExecutionStatus.FAILED,
        exit_code=result.exit_code,
        signal=result.signal,
        limit_exceeded=result.limit_exceeded,
        usage=result.usage,
        output_truncated=output_truncated,
    )
    if cancelled:
        return replace(ended, status=ExecutionStatus.CANCELLED, limit_exceeded=None)
    if output_truncated:
        return replace(ended, limit_exceeded=LimitKind.OUTPUT)
    if result.error is not None:
        return replace(ended, status=ExecutionStatus.ERROR, error=result.error, limit_exceeded=None)
    if result.limit_exceeded in (LimitKind.WALL_TIME, LimitKind.CPU_TIME):
        return replace(ended, status=ExecutionStatus.TIMED_OUT)
    # A script that caught a limit's refusal and exited 0 succeeded; the limit it hit stays named.
    if result.exit_code == 0 and result.signal is None:
        return replace(ended, status=ExecutionStatus.SUCCEEDED)
    return ended
