"""The contract between the worker and a sandbox runner (local bubblewrap or Kubernetes).

A runner starts one sandbox per execution, named deterministically after the execution, so a
retried job finds (or cleans up) what an earlier attempt left. The sandbox speaks raw bytes:
the worker turns them into lines, enforces the output cap and classifies the result.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from uuid import UUID

from podrun.core.limits import LimitKind, Limits
from podrun.core.output import Stream

# Input reaches a harness in frames of at most this many bytes (about 64 KiB of base64).
STDIN_FRAME_BYTES = 48 * 1024


def sandbox_name(execution_id: UUID) -> str:
    """The deterministic sandbox name of an execution (a retry finds what an earlier attempt left)."""
    return "podrun-" + execution_id.hex


@dataclass(frozen=True, slots=True)
class RuntimeSpec:
    """A language runtime a runner can start: for the local runner, one interpreter on the host."""

    id: str
    language: str
    version: str
    default: bool
    max_limits: Limits
    default_limits: Limits
    # (name, version) of the packages installed beside the standard library.
    packages: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class InputFile:
    """A file placed read-only in the script's working directory; `name` is a plain name (checked on submission)."""

    name: str
    content: bytes


@dataclass(frozen=True, slots=True)
class ArtifactCaps:
    """How many artifacts a run may produce, and how many bytes in all (within its output limit as well)."""

    count: int
    total_bytes: int


# A run that may produce no artifact (a sandbox that never got a run's caps).
NO_ARTIFACTS = ArtifactCaps(count=0, total_bytes=0)


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """Everything a runner needs to start one run. `name` is derived from the execution id.

    `resume` is set when a worker takes the run over from one that died: that worker may have started
    the run's sandbox already, so a durable runner looks for it before starting anything. `kernel` asks for
    a kernel's sandbox (runners/kernel.py): no script, no wall time of its own; its cells come later.
    """

    name: str
    runtime_id: str
    script: str
    stdin: bytes | None
    limits: Limits
    resume: bool = False
    files: tuple[InputFile, ...] = ()
    artifact_caps: ArtifactCaps = NO_ARTIFACTS
    kernel: bool = False


@dataclass(frozen=True, slots=True)
class OutputBytes:
    """A chunk of raw bytes a script wrote, in the order it wrote them, on one stream."""

    stream: Stream
    data: bytes


@dataclass(frozen=True, slots=True)
class ArtifactOutput:
    """A file the script produced (a figure, or a file it left in /tmp/outputs), whole, at the point it was produced.

    `refused` when it would have broken the run's artifact caps: then it has no data, `size` is what it
    claimed, and the run ends at its output limit.
    """

    name: str
    media_type: str
    data: bytes
    size: int
    refused: bool = False


SandboxOutput = OutputBytes | ArtifactOutput


@dataclass(frozen=True, slots=True)
class SandboxUsage:
    """Resources a run used, as measured by the runner (host side where it can)."""

    wall_time_ms: int | None = None
    cpu_time_ms: int | None = None
    peak_memory_kib: int | None = None


@dataclass(frozen=True, slots=True)
class SandboxResult:
    """How a sandbox ended.

    `exit_code` is set when the script exited, `signal` when a signal killed it. `limit_exceeded`
    names the limit the runner saw being hit (wall, cpu, memory, processes). `error` is set when the
    platform itself failed; it is shown to the user, so it must not contain internals.
    """

    exit_code: int | None
    signal: int | None
    limit_exceeded: LimitKind | None
    usage: SandboxUsage
    error: str | None = None


class Sandbox(Protocol):
    """One running sandbox."""

    def output(self) -> AsyncIterator[SandboxOutput]:
        """Yield the script's output and artifacts as they arrive; ends when both streams are closed."""
        ...

    async def write_stdin(self, data: bytes) -> None:
        """Write to the script's stdin. Ignored once stdin is closed or the script has ended."""
        ...

    async def close_stdin(self) -> None:
        """Send EOF to the script's stdin."""
        ...

    async def kill(self) -> None:
        """Kill everything in the sandbox now (cancel, output cap). Idempotent."""
        ...

    async def wait(self) -> SandboxResult:
        """Wait for the sandbox to end (after `output()` is exhausted) and release its resources."""
        ...


class Runner(Protocol):
    """Starts sandboxes. One runner per worker process."""

    def runtimes(self) -> list[RuntimeSpec]:
        """The runtimes this runner offers; exactly one has `default=True`."""
        ...

    def isolation(self) -> str:
        """A short human-readable description of how limits are enforced (for example "cgroup v1 + rlimits")."""
        ...

    async def start(self, spec: SandboxSpec) -> Sandbox:
        """Start (or, where the backend allows it, re-attach to) the sandbox named `spec.name`."""
        ...

    async def cleanup(self, name: str) -> None:
        """Remove whatever a sandbox of this name left behind (after a crashed worker). Idempotent."""
        ...

    async def open(self, worker_id: str) -> None:
        """Get ready for runs (a worker calls this once at start-up: the local runner warms sandboxes).

        `worker_id` is the id the worker's heartbeat carries: a Kubernetes runner labels its warm pods
        with it, so other workers' reapers can tell whether the pool that keeps them is still alive.
        """
        ...

    async def close(self) -> None:
        """Stop what `open` started."""
        ...


@runtime_checkable
class DurableRunner(Runner, Protocol):
    """A runner whose sandboxes outlive the worker that started them (Kubernetes pods).

    A run whose worker died is therefore not ended: another worker re-attaches to its sandbox
    (`start` with the same name finds it). Sandboxes nobody will come back for are reaped.
    """

    async def reap(self, keep: Callable[[UUID], Awaitable[bool]], alive: Callable[[str], Awaitable[bool]]) -> list[str]:
        """Remove what nobody will come back for; returns the names removed.

        That is the sandboxes of executions for which `keep` is False, and the sandboxes still waiting
        for a run that a worker for which `alive` is False had warmed.
        """
        ...


class FailedSandbox:
    """A sandbox that never started: no output, and a result that carries the error."""

    def __init__(self, error: str) -> None:
        self.error = error

    async def output(self) -> AsyncIterator[SandboxOutput]:
        """Nothing was written."""
        return
        yield

    async def write_stdin(self, data: bytes) -> None:
        """Ignored."""

    async def close_stdin(self) -> None:
        """Ignored."""

    async def kill(self) -> None:
        """Nothing to kill."""

    async def wait(self) -> SandboxResult:
        """The platform error."""
        return SandboxResult(exit_code=None, signal=None, limit_exceeded=None, usage=SandboxUsage(), error=self.error)
