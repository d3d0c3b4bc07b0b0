"""The harness of a kernel: one script process kept alive, running the cells the runner sends, one at a time.

Stdlib only, shipped beside harness.py, which hands a header with "kernel": true to `Kernel.serve`. The
script process becomes harness_cells.py's loop; each K frame is handed to it, its output pumped as a
run's is, and one X frame ends each cell. The harness enforces each cell's wall and CPU time by
interrupting it (SIGINT: KeyboardInterrupt in the cell, the kernel's state kept), as it does for a T
frame; a cell still running INTERRUPT_GRACE_S after its interrupt is killed with the whole kernel. The
kernel ends when its process does (killed, out of memory) or when the runner closes the harness's stdin.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import TYPE_CHECKING

if __package__:  # imported on the host (its tests)
    from podrun.runners import harness_artifacts, protocol
else:  # in the sandbox, beside protocol.py (harness.py put this directory on sys.path)
    import harness_artifacts  # type: ignore[import-not-found, no-redef]
    import protocol  # type: ignore[import-not-found, no-redef]

if TYPE_CHECKING:
    from podrun.runners.harness import Harness

# How long an interrupted cell may take to stop before the kernel is killed with it.
INTERRUPT_GRACE_S = 3.0
# How often a running cell's wall and CPU time are checked, and the CPU time used between cells.
LIMITS_POLL_S = 0.05
IDLE_POLL_S = 1.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class RunningCell:
    """The cell the kernel's process runs now."""

    def __init__(self, cell: protocol.Cell, cpu_ms: int) -> None:
        self.cell = cell
        self.started = time.monotonic()
        self.cpu_at_start = cpu_ms
        self.interrupted_at: float | None = None
        # The limit the harness interrupted it for (protocol.DIED_OF_*).
        self.limit: str | None = None


class Kernel:
    """Serves cells with the harness's pipes and selector (one per sandbox, made when the header says kernel)."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.waiting: list[protocol.Cell] = []
        self.running: RunningCell | None = None
        # CPU time between cells (threads a cell left running, say) may reach one cell's CPU limit, counted from
        # the end of the last cell; past it the kernel is killed, so no work escapes the limits by outliving a cell.
        self.idle_cpu_budget_ms = 0
        self.idle_cpu_from = 0
        self.idle_limit: str | None = None

    def frame(self, tag: str, payload: bytes) -> None:
        """A cell to run, or an interrupt of the running one."""
        if tag == protocol.CELL:
            self.waiting.append(protocol.Cell.from_json(protocol.parse_json_payload(payload)))
        elif self.running is not None and self.running.interrupted_at is None:
            self.interrupt()

    def serve(self, header: protocol.Header) -> int | None:
        """Run cells until the kernel's process ends; its exit status (negative for a signal)."""
        h = self.harness
        h.artifacts.keep_open = True
        exit_wakeup = h.start_child(header)
        child = h.child
        assert child is not None
        self.idle_cpu_budget_ms = header.cpu_time_ms
        try:
            while True:
                if self.running is None and self.waiting:
                    self.start(self.waiting.pop(0))
                timeout = LIMITS_POLL_S if self.running is not None or exit_wakeup is None else IDLE_POLL_S
                for key, _ in h.selector.select(timeout):
                    if key.data == "output":
                        h.pump_output(key.fd, h.streams)
                    elif key.data == "artifact":
                        h.read_figures()
                        if h.artifacts.cell_done is not None:
                            self.end(h.artifacts.cell_done)
                            h.artifacts.cell_done = None
                    elif key.data == "control":
                        h.read_control()
                        if not h.control_open:
                            self.stop()
                    elif key.data == "stdin":
                        h.flush_stdin()
                    elif key.data == "exit":
                        h.selector.unregister(key.fd)
                    elif key.data == "reap":
                        h.reap_orphans()
                if h.child_exited():
                    return self.died()
                if self.running is not None:
                    self.check_limits(self.running)
                elif self.cpu_ms() - self.idle_cpu_from >= self.idle_cpu_budget_ms:
                    self.idle_limit = protocol.DIED_OF_CPU_TIME
                    h.kill_child()
        finally:
            if exit_wakeup is not None:
                os.close(exit_wakeup)

    def start(self, cell: protocol.Cell) -> None:
        """Hand the next cell to the kernel's process (which waits between cells, reading them)."""
        h = self.harness
        assert h.child is not None
        h.artifacts.new_cell(cell.max_artifacts, cell.max_artifact_bytes)
        self.running = RunningCell(cell, self.cpu_ms())
        self.idle_cpu_budget_ms = cell.cpu_time_ms
        h.child.send_cell(cell)

    def end(self, done: dict[str, object]) -> None:
        """The cell said it ended: its output and figures are out; send its files, then its exit frame."""
        running = self.running
        if running is None:
            return
        h = self.harness
        h.drain_output()
        h.artifacts.send_output_files()
        _empty(harness_artifacts.OUTPUTS_DIR)
        interrupted = done.get("interrupted") is True
        exit_code = done.get("exit_code")
        died_of = done.get("died_of")
        self.emit_exit(
            running,
            exit_code=None if interrupted or not isinstance(exit_code, int) else exit_code,
            signal_number=signal.SIGINT if interrupted else None,
            died_of=running.limit or (died_of if isinstance(died_of, str) else None),
        )

    def died(self) -> int | None:
        """The kernel's process has ended: the running cell (if any) ends with it, and so does the kernel."""
        h = self.harness
        assert h.child is not None
        h.drain_output()
        h.kill_child()
        returncode = h.child.wait()
        if self.running is not None:
            self.emit_exit(
                self.running,
                exit_code=returncode if returncode >= 0 else None,
                signal_number=-returncode if returncode < 0 else None,
                died_of=self.running.limit or h.artifacts.died_of,
                kernel_ended=True,
            )
        elif self.idle_limit is not None:
            # No cell to end: this exit frame, before the harness's last, says what the kernel was killed for.
            h.emit(
                "X",
                protocol.Exit(
                    None, -returncode if returncode < 0 else None, 0, 0, 0, died_of=self.idle_limit, kernel_ended=True
                ).to_json(),
            )
        return returncode

    def emit_exit(
        self,
        running: RunningCell,
        *,
        exit_code: int | None,
        signal_number: int | None,
        died_of: str | None,
        kernel_ended: bool = False,
    ) -> None:
        """One cell's exit frame: what it used, and how it ended."""
        self.running = None
        self.idle_cpu_from = self.cpu_ms()
        record = protocol.Exit(
            exit_code=exit_code,
            signal=signal_number,
            wall_ms=int((time.monotonic() - running.started) * 1000),
            cpu_ms=max(0, self.cpu_ms() - running.cpu_at_start),
            peak_rss_kib=self.peak_rss_kib(),
            died_of=died_of,
            kernel_ended=kernel_ended,
        )
        self.harness.emit("X", record.to_json())

    def check_limits(self, running: RunningCell) -> None:
        """Interrupt a cell past its wall or CPU time; kill the kernel when an interrupted cell does not stop."""
        now = time.monotonic()
        if running.interrupted_at is not None:
            if now - running.interrupted_at >= INTERRUPT_GRACE_S:
                self.harness.kill_child()
            return
        if now - running.started >= running.cell.wall_time_ms / 1000:
            running.limit = protocol.DIED_OF_WALL_TIME
        elif self.cpu_ms() - running.cpu_at_start >= running.cell.cpu_time_ms:
            running.limit = protocol.DIED_OF_CPU_TIME
        if running.limit is not None:
            self.interrupt()

    def interrupt(self) -> None:
        """KeyboardInterrupt in the running cell (the kernel's process ignores SIGINT between cells)."""
        h = self.harness
        assert h.child is not None
        assert self.running is not None
        self.running.interrupted_at = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.kill(h.child.pid, signal.SIGINT)

    def stop(self) -> None:
        """The runner closed the harness's stdin: no more cells; the process ends after the running one."""
        h = self.harness
        assert h.child is not None
        if h.child.go >= 0:
            os.close(h.child.go)
            h.child.go = -1

    def cpu_ms(self) -> int:
        """CPU time the kernel's process has used (all its threads), from /proc."""
        h = self.harness
        assert h.child is not None
        try:
            with open(f"/proc/{h.child.pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            return 0
        # utime and stime are the 14th and 15th fields; the 3rd is the first after the command's ")".
        return (int(fields[11]) + int(fields[12])) * 1000 // CLOCK_TICKS

    def peak_rss_kib(self) -> int:
        """The kernel's process's peak resident memory so far."""
        h = self.harness
        assert h.child is not None
        with contextlib.suppress(OSError, ValueError), open(f"/proc/{h.child.pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
        return 0


def _empty(directory: str) -> None:
    """Remove the files a cell left in /tmp/outputs once they were sent (the next cell sends its own)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        for name in os.listdir(fd):
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=fd)
    finally:
        os.close(fd)
