"""The host's side of a kernel: one sandbox whose harness runs cells (harness_kernel.py), each a `Sandbox` of its own.

A runner starts a kernel's sandbox as it starts a run's (a header with `kernel` set, warm where it can) and
gives it to `KernelSandbox` as a `KernelChannel`: frames out, lines back, kill and wait. `cell` sends a cell
and returns a `CellSandbox`, which the worker pumps exactly as it pumps a run's sandbox: its output until the
cell's exit frame, stdin, and `kill`, which for a cell is an interrupt (the kernel and its state stay).

A durable runner's kernel outlives its worker: the worker taking it over re-attaches to the same sandbox,
whose lines start from its first cell again, and `take_over` skips the cells already run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

import structlog

from podrun.core.limits import LimitKind, Limits
from podrun.runners import protocol
from podrun.runners.base import (
    STDIN_FRAME_BYTES,
    ArtifactCaps,
    SandboxOutput,
    SandboxResult,
    SandboxUsage,
)
from podrun.runners.ending import Ending, classify
from podrun.runners.frames import FrameReader

log = structlog.get_logger(__name__)

# The limits a kernel's harness interrupts a cell for, by the name its exit record gives them.
CELL_LIMITS = {protocol.DIED_OF_WALL_TIME: LimitKind.WALL_TIME, protocol.DIED_OF_CPU_TIME: LimitKind.CPU_TIME}
IGNORED_INTERRUPT = "the cell did not stop when interrupted, so the kernel was stopped with it"
# Lines read ahead of the cell that takes them (the harness waits when they are not taken).
LINES_BUFFERED = 256
# How long a taken-over kernel that may be running a cell is given to end it once interrupted: longer than
# the harness's grace before it kills a kernel whose cell ignores its interrupt (harness_kernel.py). Also how
# long its earlier lines may pause before the rest counts as gone (a pod's log rotated past its first cells).
TAKE_OVER_DRAIN_S = 5.0
EXIT_TAG = protocol.EXIT.encode() + b" "


@runtime_checkable
class KernelChannel(Protocol):
    """A started kernel sandbox, as a runner gives it: frames to its harness, lines from it."""

    async def send(self, frame: bytes) -> None:
        """Write one frame to the harness (nothing once it has ended)."""
        ...

    async def read_line(self) -> bytes:
        """The harness's next frame line; b"" once it has ended."""
        ...

    async def kill(self) -> None:
        """Kill the whole sandbox."""
        ...

    async def wait(self) -> SandboxResult:
        """Wait for the sandbox to end and release it: how it ended (killed, out of memory, ...)."""
        ...


class KernelSandbox:
    """One kernel: its sandbox, the cells it has run, and how it ended once it has.

    One task reads the harness's lines as they come, so the end of a kernel between cells is seen at once
    (`closed`); output a kernel writes between cells (a thread a cell left running) goes to the next cell.
    """

    def __init__(self, channel: KernelChannel, limits: Limits, cells_run: int = 0) -> None:
        self.channel = channel
        self.limits = limits
        self.cells = cells_run
        self.ended: SandboxResult | None = None
        self.lock = asyncio.Lock()
        self.lines: asyncio.Queue[bytes] = asyncio.Queue(maxsize=LINES_BUFFERED)
        self.closed = asyncio.Event()
        # The exit frame the harness sent between cells, saying why it killed the kernel (its CPU between cells).
        self.idle_exit: protocol.Exit | None = None
        self.reader = asyncio.create_task(self._read(), name="kernel-lines")

    @property
    def alive(self) -> bool:
        """Whether the kernel can still run cells."""
        return self.ended is None and not self.closed.is_set()

    async def _read(self) -> None:
        try:
            while line := await self.channel.read_line():
                await self.lines.put(line)
        finally:
            self.closed.set()
            await self.lines.put(b"")

    def idle_end(self) -> LimitKind | None:
        """The limit a kernel that ended between cells was killed for, from the frames it left unread."""
        while not self.lines.empty():
            line = self.lines.get_nowait()
            with contextlib.suppress(ValueError):
                tag, payload = protocol.parse_frame(line)
                if tag == protocol.EXIT:
                    record = protocol.Exit.from_json(protocol.parse_json_payload(payload))
                    if record.kernel_ended and record.died_of in CELL_LIMITS:
                        return CELL_LIMITS[record.died_of]
        return None

    async def cell(self, code: str, artifact_caps: ArtifactCaps) -> CellSandbox:
        """Send the next cell; the caller pumps the returned sandbox to its end before sending another."""
        self.cells += 1
        cell = protocol.Cell(
            code=code,
            number=self.cells,
            wall_time_ms=self.limits.wall_time_ms,
            cpu_time_ms=self.limits.cpu_time_ms,
            max_artifacts=artifact_caps.count,
            max_artifact_bytes=artifact_caps.total_bytes,
        )
        sandbox = CellSandbox(self, artifact_caps)
        await self.channel.send(protocol.encode_frame(protocol.CELL, cell.to_json()))
        return sandbox

    async def next_line(self) -> bytes:
        """The harness's next line; b"" once it has ended (and every time after)."""
        if self.closed.is_set() and self.lines.empty():
            return b""
        return await self.lines.get()

    async def take_over(self, cells_run: int, *, busy: bool) -> bool:
        """Go on with a kernel a dead worker held, which had seen `cells_run` cells end; whether it lives.

        Its lines are read again from the first cell: the exit frames of the cells run are skipped. A kernel
        left `busy` may still run a cell (the dead worker's, which has been ended already) or have just ended
        one: it is interrupted, and that cell's lines are skipped up to its exit frame, if one comes.
        """
        self.cells = cells_run
        exits = 0
        while exits < cells_run:
            try:
                async with asyncio.timeout(TAKE_OVER_DRAIN_S):
                    line = await self.next_line()
            except TimeoutError:
                log.warning("kernel lines of earlier cells missing", cells_run=cells_run, exits_seen=exits)
                break
            if not line:
                await self.end()
                return False
            exits += line.startswith(EXIT_TAG)
        if not busy:
            return True
        await self.channel.send(protocol.encode_frame(protocol.INTERRUPT))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(TAKE_OVER_DRAIN_S):
                while not (line := await self.next_line()).startswith(EXIT_TAG):
                    if not line:
                        await self.end()
                        return False
                self.cells += 1
        return True

    async def stop(self) -> SandboxResult:
        """Kill the kernel's sandbox (idempotent); how it ended."""
        if self.ended is None:
            await self.channel.kill()
            return await self.end()
        return self.ended

    async def end(self) -> SandboxResult:
        """Wait for the sandbox to end (it has, or was killed); how it ended."""
        async with self.lock:
            if self.ended is None:
                self.ended = await self.channel.wait()
                self.reader.cancel()
        return self.ended


class CellSandbox:
    """One cell of a kernel, seen as a sandbox: its output until its exit frame; `kill` interrupts it."""

    def __init__(self, kernel: KernelSandbox, artifact_caps: ArtifactCaps) -> None:
        self.kernel = kernel
        self.frames = FrameReader(artifact_caps)
        self.interrupted = False
        self.output_done = False
        self.platform_error: str | None = None

    async def output(self) -> AsyncIterator[SandboxOutput]:
        """The cell's output and figures, until its exit frame (or the kernel's end)."""
        if self.output_done:
            return
        try:
            while self.frames.exit is None:
                line = await self.kernel.next_line()
                if not line:
                    break
                if (output := self.frames.read(line)) is not None:
                    yield output
        except (ValueError, UnicodeDecodeError):  # FrameError, or a line over the stream limit
            self.platform_error = "The kernel returned malformed data."
            await self.kernel.channel.kill()
        finally:
            self.output_done = True

    async def write_stdin(self, data: bytes) -> None:
        """Input for the kernel's stdin, which the cell reads."""
        for offset in range(0, len(data), STDIN_FRAME_BYTES):
            await self.kernel.channel.send(
                protocol.encode_frame(protocol.INPUT, data[offset : offset + STDIN_FRAME_BYTES])
            )

    async def close_stdin(self) -> None:
        """Ignored: the kernel's stdin serves every cell."""

    async def kill(self) -> None:
        """Interrupt the cell (KeyboardInterrupt); the harness kills the kernel if it does not stop."""
        if not self.interrupted:
            self.interrupted = True
            await self.kernel.channel.send(protocol.encode_frame(protocol.INTERRUPT))

    async def wait(self) -> SandboxResult:
        """How the cell ended; a kernel that ended with it is waited for, and its end named."""
        async for _ in self.output():
            pass
        cell_exit = self.frames.exit
        if cell_exit is None or cell_exit.kernel_ended or self.platform_error is not None:
            kernel_end = await self.kernel.end()
            return self._with_kernel_end(cell_exit, kernel_end)
        usage = SandboxUsage(
            wall_time_ms=cell_exit.wall_ms, cpu_time_ms=cell_exit.cpu_ms, peak_memory_kib=cell_exit.peak_rss_kib
        )
        ending = Ending(cell_exit, limit_hit=CELL_LIMITS.get(cell_exit.died_of or ""), limits=self.kernel.limits)
        return classify(ending, usage)

    def _with_kernel_end(self, cell_exit: protocol.Exit | None, kernel_end: SandboxResult) -> SandboxResult:
        """The cell's result when its kernel ended with it: the kernel's limit (memory, say) is the cell's."""
        if cell_exit is None:
            return kernel_end if self.platform_error is None else _failed(self.platform_error)
        usage = SandboxUsage(cell_exit.wall_ms, cell_exit.cpu_ms, cell_exit.peak_rss_kib)
        limit = CELL_LIMITS.get(cell_exit.died_of or "") or kernel_end.limit_exceeded
        if limit is None and cell_exit.died_of == protocol.DIED_OF_MEMORY:
            limit = LimitKind.MEMORY
        # The harness saw the kernel's process end and said how: that is the cell's end, not a platform failure.
        return SandboxResult(cell_exit.exit_code, cell_exit.signal, limit, usage)


def _failed(error: str) -> SandboxResult:
    return SandboxResult(exit_code=None, signal=None, limit_exceeded=None, usage=SandboxUsage(), error=error)
