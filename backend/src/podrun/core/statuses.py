"""Where a run is in its life, and which statuses mean it is still going."""

from __future__ import annotations

import enum


class ExecutionStatus(enum.StrEnum):
    """QUEUED, STARTING and RUNNING are active; the rest are terminal."""

    QUEUED = "QUEUED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELLED = "CANCELLED"
    ERROR = "ERROR"

    @property
    def terminal(self) -> bool:
        """Whether the run has ended."""
        return self in TERMINAL


ACTIVE = frozenset({ExecutionStatus.QUEUED, ExecutionStatus.STARTING, ExecutionStatus.RUNNING})
# Started: a worker holds the run (its sandbox may be up).
STARTED = frozenset({ExecutionStatus.STARTING, ExecutionStatus.RUNNING})
TERMINAL = frozenset(ExecutionStatus) - ACTIVE


class KernelStatus(enum.StrEnum):
    """STARTING (queued, or its sandbox starting), IDLE, BUSY (a cell runs); STOPPED and DEAD are final."""

    STARTING = "STARTING"
    IDLE = "IDLE"
    BUSY = "BUSY"
    STOPPED = "STOPPED"
    DEAD = "DEAD"

    @property
    def ended(self) -> bool:
        """Whether the kernel is over (its sandbox gone)."""
        return self in (KernelStatus.STOPPED, KernelStatus.DEAD)


# Statuses of a kernel that lives (takes cells, holds or waits for a sandbox).
LIVE_KERNEL = (KernelStatus.STARTING, KernelStatus.IDLE, KernelStatus.BUSY)
