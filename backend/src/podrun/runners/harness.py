"""The program that runs inside every sandbox, between the runner and the user's script.

It is stdlib-only and runs on every interpreter a runner offers (Python >= 3.10), as
`python -I harness.py [--header FILE]` (with --header, the header frame is read from FILE and the
other runner frames from stdin: how the Kubernetes runner hands it over). It keeps stdout and
stderr apart, forwards input, applies rlimits and reports how the script ended. It is the sandbox's
PID 1, so the script cannot signal it, and it reaps the processes the script leaves behind.

Before it says ready, the harness forks the process that will become the script: an interpreter
already started, waiting for its limits. The header then costs a pipe write instead of a second
interpreter start, which is what makes a warm sandbox answer in milliseconds. The fork happens
before anything of the run is known, and the script process drops every descriptor but its own
three pipes before the script's first line runs.

It speaks the frame protocol of protocol.py on its own stdin and stdout. It is shipped with the
modules it imports (protocol.HARNESS_MODULES): harness_child.py is the script's process,
harness_artifacts.py the figures and /tmp/outputs files it sends; this module is the loop that pumps
the script's pipes and the runner's frames.
"""

import contextlib
import ctypes
import errno
import gc
import os
import resource
import selectors
import signal
import sys
import time
from typing import Any

if __package__:  # imported on the host (its tests)
    from podrun.runners import harness_artifacts, harness_child, harness_kernel, protocol
else:  # run in the sandbox, where its modules were shipped beside this file (protocol.HARNESS_MODULES)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import harness_artifacts  # type: ignore[import-not-found, no-redef]
    import harness_child  # type: ignore[import-not-found, no-redef]
    import harness_kernel  # type: ignore[import-not-found, no-redef]
    import protocol  # type: ignore[import-not-found, no-redef]

# Input for the script the harness holds at most: past it, it reads no more frames from the runner until the
# script has taken some, so input a script does not read waits outside the sandbox (streams/control.py).
MAX_PENDING_STDIN = 256 * 1024
# After the script exits, how long background processes that still hold its pipes may keep writing.
DRAIN_AFTER_EXIT_S = 0.2
PR_SET_DUMPABLE = 4


def _make_undumpable() -> None:
    # A non-dumpable process cannot be ptraced and its /proc/<pid>/fd cannot be opened by a
    # process of the same uid without CAP_SYS_PTRACE: the script cannot forge our frames.
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")


class Harness:
    """One run: read the header, start the script, pump bytes until it ends."""

    def __init__(
        self,
        control_in: int = 0,
        frames_out: int = 1,
        child_exits: int | None = None,
        header_file: str | None = None,
    ) -> None:
        self.control_in = control_in
        self.frames_out = frames_out
        self.header_file = header_file
        # Readable when any child exits (see `_watch_child_exits`): time to reap what the script left behind.
        self.child_exits = child_exits
        self.selector = selectors.DefaultSelector()
        self.control_buffer = b""
        self.control_open = True
        # Not reading the runner's frames while the script's pending input is at its bound.
        self.control_paused = False
        self.child: harness_child.ScriptProcess | None = None
        self.pending_stdin = bytearray()
        self.stdin_eof_requested = False
        self.stdin_watched = False
        self.error: str | None = None
        self.streams: dict[int, str] = {}
        self.artifacts = harness_artifacts.Artifacts(self.emit)
        # Whether the figure pipe is still read.
        self.artifacts_open = False
        # Set when the header asks for a kernel: it runs cells instead of a script (harness_kernel.py).
        self.kernel: harness_kernel.Kernel | None = None

    def emit(self, tag: str, payload: bytes | dict[str, Any] | None = None) -> None:
        """Write one frame to the runner; blocks when the runner reads slowly (back-pressure)."""
        harness_child.write_all(self.frames_out, protocol.encode_frame(tag, payload))

    def read_header(self) -> protocol.Header:
        """Block until the header line has arrived (or read it from the header file)."""
        if self.header_file is not None:
            with open(self.header_file, "rb") as header:
                self.control_buffer = header.read(protocol.MAX_FRAME_BYTES + 1)
        while b"\n" not in self.control_buffer:
            data = os.read(self.control_in, harness_child.READ_CHUNK)
            if not data:
                raise protocol.FrameError("no header")
            self.control_buffer += data
            if len(self.control_buffer) > protocol.MAX_FRAME_BYTES:
                raise protocol.FrameError("header too long")
        line, _, self.control_buffer = self.control_buffer.partition(b"\n")
        tag, payload = protocol.parse_frame(line)
        if tag != "H":
            raise protocol.FrameError("first frame is not a header")
        return protocol.Header.from_json(protocol.parse_json_payload(payload))

    def run(self, child: harness_child.ScriptProcess) -> int:
        """Run the whole protocol with the waiting script process; returns the harness's own exit status."""
        self.child = child
        started = time.monotonic()
        self.emit("R", {"protocol": protocol.PROTOCOL_VERSION, "pid": os.getpid()})
        exit_code: int | None = None
        exit_signal: int | None = None
        try:
            header = self.read_header()
            self.emit("S")
            if header.kernel:
                self.kernel = harness_kernel.Kernel(self)
            self.pending_stdin += header.stdin
            self.stdin_eof_requested = header.stdin_eof
            self.handle_control_lines()
            started = time.monotonic()
            returncode = self.kernel.serve(header) if self.kernel is not None else self.run_script(header)
            if returncode is not None:
                exit_code, exit_signal = (returncode, None) if returncode >= 0 else (None, -returncode)
        except protocol.FrameError as exc:
            self.error = f"protocol error: {exc}"
        except OSError as exc:
            self.error = f"could not run the script: {errno.errorcode.get(exc.errno or 0, 'error')}"
        finally:
            self.kill_child()
            if self.child is not None:
                self.child.close()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.emit(
            "X",
            protocol.Exit(
                exit_code=exit_code,
                signal=exit_signal,
                wall_ms=int((time.monotonic() - started) * 1000),
                cpu_ms=int((usage.ru_utime + usage.ru_stime) * 1000),
                peak_rss_kib=usage.ru_maxrss,
                error=self.error,
                died_of=self.artifacts.died_of,
            ).to_json(),
        )
        return 0

    def run_script(self, header: protocol.Header) -> int | None:
        """Start the script and pump its pipes until it has exited and its output is drained; then send its files."""
        harness_child.write_file(harness_child.SCRIPT_PATH, header.script.encode("utf-8", "surrogatepass"), 0o644)
        inputs_dir = f"{protocol.SANDBOX_TMP}/{protocol.INPUTS_DIR}"
        for name, data in header.files:
            if name.startswith(protocol.INPUTS_DIR + "/") and not os.path.isdir(inputs_dir):
                os.mkdir(inputs_dir, 0o755)
            harness_child.write_file(f"{protocol.SANDBOX_TMP}/{name}", data, 0o444)
        if os.path.isdir(inputs_dir):
            os.chmod(inputs_dir, 0o555)  # noqa: S103 - read-only (no writes), as the files in it
        self.artifacts.max_count, self.artifacts.max_bytes = header.max_artifacts, header.max_artifact_bytes
        exit_wakeup = self.start_child(header)
        assert self.child is not None
        streams = self.streams
        drain_deadline: float | None = None
        while drain_deadline is None or ((streams or self.artifacts_open) and time.monotonic() < drain_deadline):
            timeout = None if exit_wakeup is not None else 0.05
            if drain_deadline is not None:
                timeout = max(0.0, drain_deadline - time.monotonic())
            for key, _ in self.selector.select(timeout):
                if key.data == "output":
                    self.pump_output(key.fd, streams)
                elif key.data == "artifact":
                    self.read_figures()
                elif key.data == "control":
                    self.read_control()
                elif key.data == "stdin":
                    self.flush_stdin()
                elif key.data == "exit":
                    self.selector.unregister(key.fd)
                elif key.data == "reap":
                    self.reap_orphans()
            if drain_deadline is None and self.child_exited():
                # Whatever the script left running in its process group dies with it; output
                # already in the pipes is still delivered.
                self.kill_child()
                drain_deadline = time.monotonic() + DRAIN_AFTER_EXIT_S
        if exit_wakeup is not None:
            os.close(exit_wakeup)
        returncode = self.child.wait()
        self.artifacts.send_output_files()
        return returncode

    def start_child(self, header: protocol.Header) -> int | None:
        """Let the waiting script process go and watch its pipes; a descriptor readable when it exits, if any."""
        os.mkdir(harness_artifacts.OUTPUTS_DIR, 0o755)
        assert self.child is not None
        self.child.start(header)
        streams = self.streams = {self.child.stdout: "O", self.child.stderr: "E"}
        for fd in (*streams, self.child.stdin, self.child.artifacts, self.child.acks):
            os.set_blocking(fd, False)
        for fd in streams:
            self.selector.register(fd, selectors.EVENT_READ, "output")
        self.selector.register(self.child.artifacts, selectors.EVENT_READ, "artifact")
        self.artifacts_open = True
        if self.control_open:
            self.selector.register(self.control_in, selectors.EVENT_READ, "control")
        self.flush_stdin()
        exit_wakeup = _pidfd(self.child.pid)
        if exit_wakeup is not None:
            self.selector.register(exit_wakeup, selectors.EVENT_READ, "exit")
        if self.child_exits is not None:
            self.selector.register(self.child_exits, selectors.EVENT_READ, "reap")
        return exit_wakeup

    def drain_output(self) -> None:
        """Forward everything the script has written so far (so an artifact comes after the output before it)."""
        for fd in list(self.streams):
            while fd in self.streams and _readable(fd):
                self.pump_output(fd, self.streams)

    def read_figures(self) -> None:
        """Read what the script process sent on the artifact pipe; figures go on whole, each acknowledged."""
        assert self.child is not None
        try:
            data = os.read(self.child.artifacts, harness_child.READ_CHUNK)
        except BlockingIOError:
            return
        if not data or not self.artifacts.take_figures(data, before=self.drain_output, ack=self.ack_figure):
            self.stop_figures()

    def ack_figure(self) -> None:
        """Tell the script process its figure went on (it waits, so figures stay in order with its output)."""
        assert self.child is not None
        with contextlib.suppress(OSError):
            os.write(self.child.acks, b".")

    def stop_figures(self) -> None:
        """Take no more figures (the pipe closed, the caps were reached, or it carried something malformed)."""
        assert self.child is not None
        if self.artifacts_open:
            self.selector.unregister(self.child.artifacts)
            self.artifacts_open = False
            os.close(self.child.artifacts)
            self.child.artifacts = -1

    def pump_output(self, fd: int, streams: dict[int, str]) -> None:
        """Forward one chunk of output, exactly as the script wrote it."""
        try:
            data = os.read(fd, harness_child.READ_CHUNK)
        except BlockingIOError:
            return
        if data:
            self.emit(streams[fd], data)
            return
        self.selector.unregister(fd)
        del streams[fd]

    def read_control(self) -> None:
        """Read frames from the runner after the header."""
        data = os.read(self.control_in, harness_child.READ_CHUNK)
        if not data:
            self.selector.unregister(self.control_in)
            self.control_open = False
            self.stdin_eof_requested = True
            self.flush_stdin()
            return
        self.control_buffer += data
        if len(self.control_buffer) > protocol.MAX_FRAME_BYTES:
            raise protocol.FrameError("control frame too long")
        self.handle_control_lines()
        self.flush_stdin()
        if len(self.pending_stdin) >= MAX_PENDING_STDIN:
            self.selector.unregister(self.control_in)
            self.control_paused = True

    def handle_control_lines(self) -> None:
        """Apply every complete frame in the control buffer."""
        while b"\n" in self.control_buffer:
            line, _, self.control_buffer = self.control_buffer.partition(b"\n")
            tag, payload = protocol.parse_frame(line)
            if tag == "I":
                if not self.stdin_eof_requested:
                    self.pending_stdin += protocol.decode_b64(payload.decode("ascii", "replace"))
            elif tag == "C":
                # A kernel's stdin serves all its cells: it never closes before the kernel does.
                self.stdin_eof_requested = self.kernel is None
            elif self.kernel is not None and tag in (protocol.CELL, protocol.INTERRUPT):
                self.kernel.frame(tag, payload)
            else:
                raise protocol.FrameError("unexpected frame")

    def flush_stdin(self) -> None:
        """Write what we can to the script's stdin without blocking; close it once asked to."""
        if self.child is None or self.child.stdin_closed:
            return
        fd = self.child.stdin
        try:
            while self.pending_stdin:
                written = os.write(fd, self.pending_stdin)
                del self.pending_stdin[:written]
        except BlockingIOError:
            self.watch_stdin(fd, watch=True)
            return
        except BrokenPipeError:
            # The script closed its stdin: later input has nowhere to go.
            self.pending_stdin.clear()
            self.stdin_eof_requested = True
        finally:
            if self.control_paused and len(self.pending_stdin) < MAX_PENDING_STDIN:
                self.selector.register(self.control_in, selectors.EVENT_READ, "control")
                self.control_paused = False
        self.watch_stdin(fd, watch=False)
        if self.stdin_eof_requested:
            self.child.close_stdin()

    def watch_stdin(self, fd: int, *, watch: bool) -> None:
        """Poll the script's stdin for writability only while input is waiting."""
        if watch == self.stdin_watched:
            return
        if watch:
            self.selector.register(fd, selectors.EVENT_WRITE, "stdin")
        else:
            self.selector.unregister(fd)
        self.stdin_watched = watch

    def reap_orphans(self) -> None:
        """Reap processes the script left behind (as the sandbox's PID 1 they become ours); never the script."""
        assert self.child_exits is not None
        with contextlib.suppress(BlockingIOError):
            while os.read(self.child_exits, 4096):
                pass
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or (self.child is not None and info.si_pid == self.child.pid):
                return
            with contextlib.suppress(ChildProcessError):
                os.waitpid(info.si_pid, 0)

    def child_exited(self) -> bool:
        """Whether the script has exited, without reaping it (its pid stays its group's id)."""
        assert self.child is not None
        if self.child.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self.child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def kill_child(self) -> None:
        """Kill the script's whole process group (the script ran in its own session)."""
        if self.child is None or self.child.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.child.pid, signal.SIGKILL)


def _readable(fd: int) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        return bool(selector.select(0))


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when `pid` exits, where the kernel offers one."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _watch_child_exits() -> int:
    """A descriptor that becomes readable whenever a child exits, and a harness deaf to the script's signals.

    The local runner starts the harness as the sandbox's PID 1, which receives from inside its PID
    namespace only the signals it has a handler for: ignoring SIGINT (Python's one default handler)
    leaves the script no signal that reaches the harness. Orphans of the script become the harness's
    children, so it reaps them as an init process must.
    """
    read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(write_end)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    if os.getpid() == 1:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return read_end


def _use_packages() -> None:
    """Put the runtime's packages on sys.path, and give matplotlib its font list (before any run is known)."""
    site_packages = f"{protocol.PACKAGES_DIR}/site-packages"
    if not os.path.isdir(site_packages):
        return
    sys.path.append(site_packages)
    cache = f"{protocol.PACKAGES_DIR}/{protocol.MATPLOTLIB_CACHE}"
    if os.path.isdir(cache):
        target = harness_child.CHILD_ENV_OVERRIDES["MPLCONFIGDIR"]
        os.makedirs(target, exist_ok=True)
        for name in os.listdir(cache):
            if os.path.isfile(f"{cache}/{name}"):
                with open(f"{cache}/{name}", "rb") as source:
                    harness_child.write_file(f"{target}/{name}", source.read(), 0o644)


def main(argv: list[str]) -> int:
    """Entry point inside the sandbox: `harness.py [--header FILE]`."""
    if argv and (len(argv) != 2 or argv[0] != "--header"):
        sys.stderr.write("usage: harness.py [--header FILE]\n")
        return 2
    # Forked first, so the script process inherits nothing the harness learns later; the harness's
    # objects are frozen first, so the script's garbage collections never touch (and copy) their pages.
    _use_packages()
    gc.freeze()
    child = harness_child.ScriptProcess()
    _make_undumpable()
    return Harness(child_exits=_watch_child_exits(), header_file=argv[1] if argv else None).run(child)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
