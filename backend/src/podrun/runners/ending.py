"""How a sandbox ended, decided once for both runners (the rule is on the docs' sandbox page).

A runner gathers what it saw (`Ending`: the harness's exit record, whether it killed the sandbox,
what its watchdog, the cgroup or the kubelet said) and `classify` turns that into the one
`SandboxResult` every runner reports, cold or warm:

- a limit is named when it was hit: the sandbox killed for it (wall time, CPU time, memory), or
  something refused by it that the host can see (the cgroup's process count, a process killed for
  memory), or the script dying of it inside the sandbox (an uncaught MemoryError);
- how the script ended (exit code, signal) is the harness's account whenever there is one: a script
  that caught a refusal and exited 0 still exited 0, and its run succeeds with the limit named;
- a sandbox that ended without an exit record was killed (SIGKILL), or, with nobody to blame, failed.

The user-facing error strings of every runner live here too.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from podrun.core.limits import LimitKind, Limits
from podrun.runners import protocol
from podrun.runners.base import SandboxResult, SandboxUsage

START_FAILED = "The sandbox could not be started."
START_TIMED_OUT = "The sandbox did not start in time."
IMAGE_FAILED = "The runtime's image could not be pulled."
ENDED_UNEXPECTEDLY = "The sandbox ended unexpectedly."
PROTOCOL_BROKEN = "The sandbox returned malformed data."
CONNECTION_LOST = "The connection to the sandbox was lost."


@dataclass(frozen=True, slots=True)
class Ending:
    """What a runner saw of a sandbox's end: facts, no verdict."""

    # The harness's exit record; None when the sandbox ended without one.
    exit: protocol.Exit | None
    # The runner killed the sandbox (cancel, output cap, one of its watchdogs).
    killed: bool = False
    # The limit the runner's own watchdog killed the sandbox for (wall time; CPU time measured on the host).
    limit_hit: LimitKind | None = None
    # The run's limits (None for a sandbox that never got a run).
    limits: Limits | None = None
    # CPU time of the whole sandbox as measured on the host (a cgroup), when it can be.
    cpu_ms: int | None = None
    # A process was killed for memory (a cgroup's OOM kill, the kubelet's OOMKilled).
    oom_killed: bool = False
    # The cgroup refused a process (its pids.max was reached).
    pids_limit_hit: bool = False
    # The cluster ended the pod at its deadline (the wall limit's backstop).
    deadline_exceeded: bool = False
    # Something of the platform broke (malformed frames, a lost connection): shown to the user.
    platform_error: str | None = None


def limit_of(ending: Ending) -> LimitKind | None:
    """The limit the run hit, if any (see the module's rule)."""
    if ending.limit_hit is not None:
        return ending.limit_hit
    exit_record = ending.exit
    cpu_ms = ending.cpu_ms if ending.cpu_ms is not None else (exit_record.cpu_ms if exit_record else None)
    used_cpu = ending.limits is not None and cpu_ms is not None and cpu_ms >= ending.limits.cpu_time_ms
    if (exit_record is not None and exit_record.signal == signal.SIGXCPU) or used_cpu:
        return LimitKind.CPU_TIME
    if ending.oom_killed or (exit_record is not None and exit_record.died_of == protocol.DIED_OF_MEMORY):
        return LimitKind.MEMORY
    if ending.deadline_exceeded:
        return LimitKind.WALL_TIME
    if ending.pids_limit_hit:
        return LimitKind.PROCESSES
    return None


def classify(ending: Ending, usage: SandboxUsage) -> SandboxResult:
    """The result of a sandbox that ended, the same for every runner."""
    limit = limit_of(ending)
    error = ending.platform_error
    exit_record = ending.exit
    if exit_record is not None:
        if exit_record.error is not None:
            error = error or START_FAILED
        return SandboxResult(exit_record.exit_code, exit_record.signal, limit, usage, error)
    if not ending.killed and limit is None:
        error = error or ENDED_UNEXPECTEDLY
    return SandboxResult(None, signal.SIGKILL if error is None else None, limit, usage, error)
