"""One local sandbox: a bwrap process with the harness in it, speaking the harness's frame protocol.

It is started (and, for the warm pool, kept waiting) by runner.py; here it waits for the harness's
ready frame, joins its cgroup, sends the header, reads frames until the exit frame, enforces the wall
and CPU limits, and reports how it ended through the one classifier (../ending.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import structlog

from podrun.core.limits import LimitKind, Limits
from podrun.runners import protocol
from podrun.runners.base import (
    NO_ARTIFACTS,
    STDIN_FRAME_BYTES,
    ArtifactCaps,
    SandboxOutput,
    SandboxResult,
    SandboxUsage,
)
from podrun.runners.cgroups import SandboxCgroup
from podrun.runners.ending import PROTOCOL_BROKEN, Ending, classify
from podrun.runners.frames import FrameReader, header_frame

log = structlog.get_logger(__name__)


READY_TIMEOUT_S = 10.0
CPU_POLL_S = 0.1
PLATFORM_STDERR_KEEP = 4096


class LocalSandbox:
    """One bwrap process with the harness in it, speaking the harness's frame protocol."""

    def __init__(
        self,
        name: str,
        process: asyncio.subprocess.Process,
        cgroup: SandboxCgroup | None,
        on_end: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self.process = process
        self.cgroup = cgroup
        self.on_end = on_end
        self.limits: Limits | None = None
        self.frames = FrameReader(NO_ARTIFACTS)
        self.started = time.monotonic()
        self.ended: float | None = None
        self.killed = False
        self.limit_hit: LimitKind | None = None
        self.platform_error: str | None = None
        self.stdin_closed = False
        self.output_done = False
        self.watchdog: asyncio.Task[None] | None = None
        self.discarded = False
        # Whether it was started ahead of its run (by the warm pool).
        self.warm = False
        self.stderr_reader = asyncio.create_task(self._read_platform_stderr())

    async def wait_ready(self) -> bool:
        """Wait for the harness's ready frame, then put every sandbox process into the cgroup."""
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), READY_TIMEOUT_S)
            tag, _ = protocol.parse_frame(line)
        except (TimeoutError, ValueError) as exc:
            log.exception("sandbox harness not ready", sandbox=self.name, error=type(exc).__name__)
            return False
        if tag != protocol.READY:
            log.error("sandbox harness not ready", sandbox=self.name, error="unexpected frame")
            return False
        if self.cgroup is not None:
            # Nothing in the sandbox forks after the ready frame until the header arrives, so this tree is complete.
            try:
                await asyncio.to_thread(self._place_in_cgroup, self.cgroup)
            except OSError as exc:
                log.exception("sandbox not placed in its cgroup", sandbox=self.name, error=type(exc).__name__)
                return False
        return True

    def _place_in_cgroup(self, cgroup: SandboxCgroup) -> None:
        for pid in _process_tree(self.process.pid):
            cgroup.add(pid)

    def waiting(self) -> bool:
        """Whether this (warm) sandbox is up and has not been given a run."""
        return self.limits is None and not self.killed and self.process.returncode is None

    def move_to(self, cgroup: SandboxCgroup) -> None:
        """Move every process of this (waiting) sandbox into `cgroup`, and remove the cgroup it leaves."""
        previous, self.cgroup = self.cgroup, cgroup
        if previous is not None:
            cgroup.take_processes(previous)
            previous.remove()

    async def discard(self) -> None:
        """Stop a sandbox that will not run anything, and release what it holds."""
        self.discarded = True
        await self.kill()
        await self.wait()

    @property
    def exit(self) -> protocol.Exit | None:
        """The harness's exit record, once it has come."""
        return self.frames.exit

    async def begin(self, header: protocol.Header, limits: Limits, artifact_caps: ArtifactCaps) -> None:
        """Send the header: the script starts now, and so do the wall-time and CPU watchdogs.

        A kernel's header starts no script: its cells' limits are the harness's to enforce, and its frames are
        read line by line by runners/kernel.py (`send`, `read_line`), not by `output`.
        """
        self.limits = limits
        self.frames = FrameReader(artifact_caps)
        await self._send(header_frame(header))
        self.started = time.monotonic()
        if header.kernel:
            self.output_done = True
        else:
            self.watchdog = asyncio.create_task(self._watch(limits))

    async def send(self, frame: bytes) -> None:
        """Write one frame to a kernel's harness."""
        await self._send(frame)

    async def read_line(self) -> bytes:
        """A kernel harness's next frame line; b"" once it has ended."""
        assert self.process.stdout is not None
        return await self.process.stdout.readline()

    async def output(self) -> AsyncIterator[SandboxOutput]:
        """The script's output chunks and artifacts, until the harness's exit frame (or its end)."""
        assert self.process.stdout is not None
        if self.output_done:
            return
        try:
            while self.exit is None:
                line = await self.process.stdout.readline()
                if not line:
                    break
                if (output := self.frames.read(line)) is not None:
                    yield output
        except (ValueError, UnicodeDecodeError) as exc:  # FrameError, or a line over the stream limit
            if not self.killed:
                log.exception("malformed frame from sandbox", sandbox=self.name, error=type(exc).__name__)
                self.platform_error = PROTOCOL_BROKEN
            await self.kill()
        finally:
            self.output_done = True

    async def write_stdin(self, data: bytes) -> None:
        """Forward input to the script, in frames of a bounded size."""
        for offset in range(0, len(data), STDIN_FRAME_BYTES):
            if self.stdin_closed:
                return
            await self._send(protocol.encode_frame(protocol.INPUT, data[offset : offset + STDIN_FRAME_BYTES]))

    async def close_stdin(self) -> None:
        """Ask the harness to close the script's stdin."""
        if not self.stdin_closed:
            await self._send(protocol.encode_frame(protocol.CLOSE))
            self.stdin_closed = True

    async def kill(self) -> None:
        """SIGKILL bwrap's process group and everything in the cgroup; the pid namespace goes with them."""
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.cgroup is not None:
            self.cgroup.kill()

    async def wait(self) -> SandboxResult:
        """Wait for the end, classify it, and remove the cgroup."""
        if not self.output_done:
            async for _ in self.output():
                pass
        unexpected_end = self.exit is None and not self.killed
        if unexpected_end:
            # The harness's stdout closed without an exit frame; make sure nothing lingers.
            await self.kill()
        await self.process.wait()
        self.ended = self.ended or time.monotonic()
        if self.watchdog is not None:
            self.watchdog.cancel()
        platform_stderr = await self.stderr_reader
        cgroup_usage = self.cgroup.usage() if self.cgroup is not None else None
        if self.cgroup is not None:
            await asyncio.to_thread(self.cgroup.remove)
        self.on_end()
        if platform_stderr:
            log.warning("sandbox platform stderr", sandbox=self.name, stderr=platform_stderr)

        cpu_ms = cgroup_usage.cpu_ns // 1_000_000 if cgroup_usage and cgroup_usage.cpu_ns is not None else None
        peak_kib = (
            cgroup_usage.peak_memory_bytes // 1024
            if cgroup_usage and cgroup_usage.peak_memory_bytes is not None
            else None
        )
        if self.exit is not None:
            cpu_ms = cpu_ms if cpu_ms is not None else self.exit.cpu_ms
            peak_kib = peak_kib if peak_kib is not None else self.exit.peak_rss_kib
        usage = SandboxUsage(
            wall_time_ms=int((self.ended - self.started) * 1000), cpu_time_ms=cpu_ms, peak_memory_kib=peak_kib
        )

        if self.exit is not None and self.exit.error is not None:
            log.error("sandbox harness failed", sandbox=self.name, error=self.exit.error)
        quietly_killed = self.exit is None and self.killed and self.limit_hit is None and self.platform_error is None
        if quietly_killed and not self.discarded:
            log.info("sandbox killed", sandbox=self.name)
        ending = Ending(
            self.exit,
            # A sandbox that ended by itself without an exit record was not killed, whatever `kill` did after.
            killed=self.killed and not unexpected_end,
            limit_hit=self.limit_hit,
            limits=self.limits,
            cpu_ms=cgroup_usage.cpu_ns // 1_000_000 if cgroup_usage and cgroup_usage.cpu_ns is not None else None,
            oom_killed=bool(cgroup_usage and cgroup_usage.oom_killed),
            pids_limit_hit=bool(cgroup_usage and cgroup_usage.pids_limit_hit),
            platform_error=self.platform_error,
        )
        return classify(ending, usage)

    async def _send(self, frame: bytes) -> None:
        stdin = self.process.stdin
        if stdin is None or stdin.is_closing():
            return
        try:
            stdin.write(frame)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            # The sandbox has ended; wait() reports how.
            self.stdin_closed = True

    async def _watch(self, limits: Limits) -> None:
        """Kill the sandbox when its wall time runs out or its cgroup has used up its CPU time."""
        deadline = self.started + limits.wall_time_ms / 1000
        while True:
            now = time.monotonic()
            if now >= deadline:
                self.limit_hit = LimitKind.WALL_TIME
                break
            cpu_ns = self.cgroup.cpu_ns() if self.cgroup is not None else None
            if cpu_ns is not None and cpu_ns >= limits.cpu_time_ms * 1_000_000:
                self.limit_hit = LimitKind.CPU_TIME
                break
            await asyncio.sleep(min(CPU_POLL_S, deadline - now))
        self.ended = time.monotonic()
        await self.kill()

    async def _read_platform_stderr(self) -> str:
        # bwrap's own messages (and a crashing harness's traceback); never the script's output.
        assert self.process.stderr is not None
        kept = b""
        while chunk := await self.process.stderr.read(65536):
            kept = (kept + chunk)[:PLATFORM_STDERR_KEEP]
        return kept.decode("utf-8", "replace")


def _process_tree(root: int) -> list[int]:
    """`root` and all its descendants, parents before children."""
    if not Path(f"/proc/{root}/task/{root}/children").exists():
        return _process_tree_by_scan(root)  # a kernel without CONFIG_PROC_CHILDREN
    tree = [root]
    for pid in tree:
        try:
            # Each thread's own children; the sandbox's processes are single-threaded, but be exact anyway.
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
            tree.extend(int(child) for task in tasks for child in (task / "children").read_text().split())
        except FileNotFoundError:
            continue  # it has just exited
    return tree


def _process_tree_by_scan(root: int) -> list[int]:
    """`_process_tree` from every process's parent in /proc (slower)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses; the fields after the last ")" do not.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree = [root]
    for pid in tree:
        tree.extend(children.get(pid, []))
    return tree
