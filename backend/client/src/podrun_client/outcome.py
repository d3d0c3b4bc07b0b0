"""How a finished run becomes prun's exit status, and the message it prints on stderr.

The script's own exit code passes through; Podrun's own outcomes get codes a shell user knows. The
repository's docs/prun.md has the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from podrun_client.generated import ExecutionStatus, ExecutionSummary, KernelStatus, KernelSummary, LimitKind
from podrun_client.limits import format_bytes, format_ms

TIMED_OUT = 124  # as timeout(1)
LIMIT_EXCEEDED = 125
PODRUN_ERROR = 126  # Podrun could not run or finish the script
SIGNALLED = 128  # + the signal number, as a shell reports it
CANCELLED = 130  # as a shell reports Ctrl-C
USAGE = 2  # bad arguments, or a request the server refused
UNREACHABLE = 69  # EX_UNAVAILABLE: the server cannot be reached
NOT_SIGNED_IN = 77  # EX_NOPERM: no stored sign-in, or it expired

_LIMIT_NAMES = {
    LimitKind.WALL_TIME: "wall-time",
    LimitKind.CPU_TIME: "CPU-time",
    LimitKind.MEMORY: "memory",
    LimitKind.OUTPUT: "output",
    LimitKind.PROCESSES: "process",
}


@dataclass(frozen=True)
class Outcome:
    """prun's exit status for a finished run, and what to tell the user on stderr (None: nothing)."""

    exit_code: int
    message: str | None = None


def outcome(execution: ExecutionSummary) -> Outcome:
    """The exit status and message for a run that has reached its terminal status."""
    if execution.status is ExecutionStatus.SUCCEEDED:
        return Outcome(0)
    if execution.status is ExecutionStatus.CANCELLED:
        return Outcome(CANCELLED, "cancelled")
    if execution.status is ExecutionStatus.ERROR:
        return Outcome(PODRUN_ERROR, f"Podrun could not run the script: {execution.error or 'unknown error'}")
    if execution.status is ExecutionStatus.TIMED_OUT:
        return Outcome(TIMED_OUT, f"timed out: {_limit(execution)}")
    if execution.limit_exceeded is not None:
        return Outcome(LIMIT_EXCEEDED, _limit(execution))
    if execution.signal is not None:
        return Outcome(SIGNALLED + execution.signal, f"the script was killed by signal {execution.signal}")
    return Outcome(execution.exit_code if execution.exit_code is not None else 1)


def kernel_ended(kernel: KernelSummary) -> Outcome:
    """`prun kernel`'s exit status and message when its kernel stopped (the idle timeout) or died under it."""
    ended = "died" if kernel.status is KernelStatus.DEAD else "stopped"
    return Outcome(PODRUN_ERROR, f"kernel {kernel.id} {ended}: {kernel.error or 'no reason given'}")


def _limit(execution: ExecutionSummary) -> str:
    kind = execution.limit_exceeded
    if kind is None:
        return "a time limit was exceeded"
    limits = execution.limits
    value = {
        LimitKind.WALL_TIME: format_ms(limits.wall_time_ms),
        LimitKind.CPU_TIME: format_ms(limits.cpu_time_ms),
        LimitKind.MEMORY: f"{limits.memory_mi_b}M",
        LimitKind.OUTPUT: format_bytes(limits.output_bytes),
        LimitKind.PROCESSES: str(limits.processes),
    }[kind]
    return f"the {_LIMIT_NAMES[kind]} limit of {value} was exceeded"
