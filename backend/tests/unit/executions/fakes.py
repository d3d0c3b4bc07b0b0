"""A `Sandbox` and a `Runner` that play a scripted run: the only fakes the pump and lifecycle tests use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from podrun.runners.base import RuntimeSpec, SandboxOutput, SandboxResult, SandboxSpec, SandboxUsage

EXITED = SandboxResult(exit_code=0, signal=None, limit_exceeded=None, usage=SandboxUsage())
KILLED = SandboxResult(exit_code=None, signal=9, limit_exceeded=None, usage=SandboxUsage())

# A step of a scripted run: output to send, or something to wait for before going on.
Step = SandboxOutput | Callable[[], Awaitable[None]]


class FakeSandbox:
    """Sends its steps' output in order; once killed it sends nothing more and ends as KILLED."""

    def __init__(self, steps: Sequence[Step], result: SandboxResult = EXITED) -> None:
        self.steps = steps
        self.result = result
        self.stdin: list[bytes] = []
        self.stdin_closed = asyncio.Event()
        self.killed = asyncio.Event()

    async def output(self) -> AsyncIterator[SandboxOutput]:
        for step in self.steps:
            if self.killed.is_set():
                return
            if callable(step):
                await step()
            else:
                yield step

    async def write_stdin(self, data: bytes) -> None:
        self.stdin.append(data)

    async def close_stdin(self) -> None:
        self.stdin_closed.set()

    async def kill(self) -> None:
        self.killed.set()

    async def wait(self) -> SandboxResult:
        return KILLED if self.killed.is_set() else self.result


class FakeRunner:
    """Starts the one sandbox it was given, calling `on_start` first (to look at the world at that moment)."""

    def __init__(self, sandbox: FakeSandbox, on_start: Callable[[SandboxSpec], Awaitable[None]] | None = None) -> None:
        self.sandbox = sandbox
        self.on_start = on_start
        self.started: list[SandboxSpec] = []
        self.cleaned: list[str] = []

    def runtimes(self) -> list[RuntimeSpec]:
        return []

    def isolation(self) -> str:
        return "fake"

    async def start(self, spec: SandboxSpec) -> FakeSandbox:
        self.started.append(spec)
        if self.on_start is not None:
            await self.on_start(spec)
        return self.sandbox

    async def cleanup(self, name: str) -> None:
        self.cleaned.append(name)

    async def open(self, worker_id: str) -> None:
        pass

    async def close(self) -> None:
        pass
