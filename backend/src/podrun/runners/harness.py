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
It speaks the frame protocol of protocol.py (shipped beside it) on its own stdin and stdout.

Artifacts never come from a path the host follows: figures travel from the script process over a pipe
of their own (fd 4, acknowledged on fd 5 so they stay in order with the output around them), and the
harness reads /tmp/outputs itself, inside the sandbox, refusing links and anything but regular files.
"""

import atexit
import builtins
import contextlib
import ctypes
import errno
import gc
import importlib.util
import io
import json
import os
import resource
import selectors
import signal
import stat
import sys
import time
import types
from importlib.machinery import SourceFileLoader
from typing import Any, NoReturn

if __package__:  # imported on the host (its tests)
    from podrun.runners import protocol
else:  # run in the sandbox, where protocol.py was shipped beside this file
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import protocol  # type: ignore[import-not-found, no-redef]

# The modules shipped beside this one into the sandbox (bundle.py names the same files on the host).
SHIPPED_MODULES = ("protocol",)
SCRIPT_PATH = protocol.SANDBOX_TMP + "/main.py"
READ_CHUNK = 64 * 1024
# Input for the script the harness holds at most: past it, it reads no more frames from the runner until the
# script has taken some, so input a script does not read waits outside the sandbox (streams/control.py).
MAX_PENDING_STDIN = 256 * 1024
# After the script exits, how long background processes that still hold its pipes may keep writing.
DRAIN_AFTER_EXIT_S = 0.2
PR_SET_DUMPABLE = 4
# The script inherits the harness's environment, which the runner set up from scratch, and runs
# as under `python -u`, without writing bytecode.
# Matplotlib, where installed, draws without a display and keeps its caches in the sandbox's /tmp; numeric
# libraries use one thread, not one per host core (each thread counts against the process limit).
CHILD_ENV_OVERRIDES = {
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "MPLBACKEND": "Agg",
    "MPLCONFIGDIR": protocol.SANDBOX_TMP + "/.matplotlib",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
# How a script that ends by an uncaught exception exits, as the interpreter would.
UNCAUGHT_EXIT_CODE = 1
# Where the waiting script process keeps the pipe its limits arrive on.
GO_FD = 3
# Where the script process sends figures to the harness, and reads the harness's acknowledgement of each.
ARTIFACT_FD = 4
ACK_FD = 5
# Where a runtime's packages (the scientific runtime's numpy, pandas, ...) are bound read-only, if it has any:
# their site-packages, and matplotlib's font list made at install, which each run gets a copy of.
# Files a script leaves here become artifacts after it exits.
OUTPUTS_DIR = protocol.SANDBOX_TMP + "/outputs"
# The announcement that precedes a figure on the artifact pipe: {"name": str, "size": int}.
MAX_ANNOUNCEMENT = 1024
# What the script process says on the artifact pipe instead of an announcement when it dies of a MemoryError.
DIED_OF_MEMORY_LINE = b'{"died_of":"MEMORY"}\n'


def _make_undumpable() -> None:
    # A non-dumpable process cannot be ptraced and its /proc/<pid>/fd cannot be opened by a
    # process of the same uid without CAP_SYS_PTRACE: the script cannot forge our frames.
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class ScriptProcess:
    """The process that becomes the script, forked while the harness waits for its header.

    Until `start` it waits on a pipe; `start` hands it the limits and it runs /tmp/main.py as
    `__main__`, with the three pipes the harness pumps as its stdin, stdout and stderr.
    """

    def __init__(self) -> None:
        stdin_read, self.stdin = os.pipe()
        self.stdout, stdout_write = os.pipe()
        self.stderr, stderr_write = os.pipe()
        go_read, self.go = os.pipe()
        self.artifacts, artifacts_write = os.pipe()
        acks_read, self.acks = os.pipe()
        self.returncode: int | None = None
        self.stdin_closed = False
        self.pid = os.fork()
        if self.pid == 0:
            for fd in (self.stdin, self.stdout, self.stderr, self.go, self.artifacts, self.acks):
                os.close(fd)
            pipes = {0: stdin_read, 1: stdout_write, 2: stderr_write, GO_FD: go_read}
            _become_script({**pipes, ARTIFACT_FD: artifacts_write, ACK_FD: acks_read})
        for fd in (stdin_read, stdout_write, stderr_write, go_read, artifacts_write, acks_read):
            os.close(fd)

    def start(self, header: protocol.Header) -> None:
        """Let the waiting process run the script under the header's limits."""
        limits = {
            "cpu_time_ms": header.cpu_time_ms,
            "memory_bytes": header.memory_bytes,
            "processes": header.processes,
            "file_size_bytes": header.file_size_bytes,
        }
        try:
            _write_all(self.go, json.dumps(limits).encode("ascii"))
        finally:
            os.close(self.go)
            self.go = -1

    def close_stdin(self) -> None:
        """EOF on the script's stdin."""
        if not self.stdin_closed:
            os.close(self.stdin)
            self.stdin_closed = True

    def wait(self) -> int:
        """Reap the script process: its exit status, negative for a signal (as subprocess reports it)."""
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def close(self) -> None:
        """Close the harness's ends of the pipes."""
        for fd in (self.stdout, self.stderr, self.go, self.artifacts, self.acks):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.close_stdin()


def _become_script(pipes: dict[int, int]) -> NoReturn:
    """The forked process: wait for the limits, then turn into the script (never returns into the harness).

    `pipes` maps the descriptor each pipe end takes in the script process to where it is now.
    """
    os.setsid()  # its own session and process group, which the harness kills as a whole
    for target, fd in pipes.items():
        os.dup2(fd, target)
    # The figure pipes are the script process's own; processes it starts do not inherit them.
    os.set_inheritable(ARTIFACT_FD, False)
    os.set_inheritable(ACK_FD, False)
    # Nothing of the harness stays reachable, not even while waiting: its frame pipes, the header.
    os.closerange(ACK_FD + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    request = b""
    while chunk := os.read(GO_FD, READ_CHUNK):
        request += chunk
    os.close(GO_FD)
    if not request:
        os._exit(0)  # the harness never started the script
    _apply_limits(json.loads(request))
    os.chdir(protocol.SANDBOX_TMP)
    os.environ.update(CHILD_ENV_OVERRIDES)
    sys.meta_path.insert(0, _PyplotFinder())
    sys.dont_write_bytecode = True
    _unbuffered_std_streams()
    sys.argv = [SCRIPT_PATH]
    sys.orig_argv = [sys.executable, "-u", SCRIPT_PATH]
    _forget_harness_modules()
    sys.path.insert(0, protocol.SANDBOX_TMP)
    interrupted = False
    try:
        status = _run_as_main(SCRIPT_PATH)
    except SystemExit as exc:
        status = _exit_status(exc)
    except KeyboardInterrupt:
        status, interrupted = UNCAUGHT_EXIT_CODE, True
    _exit(status, interrupted=interrupted)


def _forget_harness_modules() -> None:
    """Leave the script the import state of a fresh interpreter: the harness's own modules neither imported nor found.

    A script's own `protocol.py` (an input file) must be the `protocol` it imports.
    """
    for name in SHIPPED_MODULES:
        sys.modules.pop(name, None)
    here = os.path.dirname(os.path.abspath(__file__))
    while here in sys.path:
        sys.path.remove(here)


def _unbuffered_std_streams() -> None:
    # What `python -u` gives a script: unbuffered stdout and stderr, in the interpreter's encodings.
    def wrap(fd: int, stream: io.TextIOWrapper, *, write: bool) -> io.TextIOWrapper:
        raw = io.FileIO(fd, "w" if write else "r", closefd=False)
        return io.TextIOWrapper(
            raw if write else io.BufferedReader(raw),
            encoding=stream.encoding,
            errors=stream.errors,
            newline="\n" if write else None,
            write_through=write,
        )

    sys.stdin = sys.__stdin__ = wrap(0, sys.__stdin__, write=False)  # type: ignore[misc, arg-type]
    sys.stdout = sys.__stdout__ = wrap(1, sys.__stdout__, write=True)  # type: ignore[misc, arg-type]
    sys.stderr = sys.__stderr__ = wrap(2, sys.__stderr__, write=True)  # type: ignore[misc, arg-type]


def _run_as_main(path: str) -> int:
    """Run the script as `__main__` the way `python path` would; an uncaught exception is printed without our frames."""
    module = types.ModuleType("__main__")
    module.__dict__.update(
        __file__=path,
        __cached__=None,
        __builtins__=builtins,
        __loader__=SourceFileLoader("__main__", path),
    )
    sys.modules["__main__"] = module
    try:
        with open(path, "rb") as source:
            code = compile(source.read(), path, "exec", dont_inherit=True)
        exec(code, module.__dict__)  # noqa: S102 - running the user's script is the point
    except SystemExit:
        raise
    except BaseException as exc:  # the interpreter's own top level, reproduced
        traceback = exc.__traceback__
        while traceback is not None and traceback.tb_frame.f_code.co_filename != path:
            traceback = traceback.tb_next
        sys.excepthook(type(exc), exc.with_traceback(traceback), traceback)
        if isinstance(exc, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        if isinstance(exc, MemoryError):
            # Only this process can tell a refused allocation (an address-space rlimit) from other failures.
            with contextlib.suppress(OSError):
                _write_all(ARTIFACT_FD, DIED_OF_MEMORY_LINE)
        return UNCAUGHT_EXIT_CODE
    return 0


def _exit_status(exc: SystemExit) -> int:
    """The status `raise SystemExit(code)` ends a process with, as the interpreter computes it."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    with contextlib.suppress(Exception):
        print(exc.code, file=sys.stderr)
    return UNCAUGHT_EXIT_CODE


def _exit(status: int, *, interrupted: bool) -> NoReturn:
    """End the script process as the interpreter would, minus tearing down the heap it shares with the harness.

    A full interpreter shutdown in a forked process writes to every page it inherited (reference
    counts, GC headers), which costs more than the script of a typical run. What a script can
    notice is kept: its non-daemon threads are waited for, its atexit handlers run, and its own
    objects are released (so files it left open are flushed and closed).
    """
    threading = sys.modules.get("threading")
    with contextlib.suppress(Exception):
        if threading is not None:
            threading._shutdown()  # what Py_Finalize calls
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        with contextlib.suppress(Exception):
            _send_figures(pyplot)  # the figures still open at exit, before matplotlib's atexit handler closes them
    atexit._run_exitfuncs()
    with contextlib.suppress(Exception):
        sys.modules["__main__"].__dict__.clear()
        gc.collect()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    if interrupted:
        # After an uncaught KeyboardInterrupt the interpreter ends by SIGINT, so a shell sees it.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(status)


class _PyplotFinder:
    """Finds matplotlib.pyplot as the other finders would, and makes its show() send the open figures.

    The harness sets a non-interactive backend (MPLBACKEND=Agg), so show() would draw nothing anyway.
    """

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> Any:
        if fullname != "matplotlib.pyplot":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        load = loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            load(module)
            module.show = lambda *args, **kwargs: _send_figures(module)  # type: ignore[attr-defined]

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


_figure_numbers = iter(range(1, 1 << 31))


def _send_figures(pyplot: Any) -> None:
    """Send every open figure as a PNG artifact, then close it (a figure is sent once)."""
    for number in pyplot.get_fignums():
        figure = pyplot.figure(number)
        image = io.BytesIO()
        figure.savefig(image, format="png")
        pyplot.close(figure)
        _send_artifact(f"figure-{next(_figure_numbers)}.png", image.getvalue())


def _send_artifact(name: str, data: bytes) -> None:
    """Hand one file to the harness and wait until it has been sent on, after the output written before it."""
    announcement = json.dumps({"name": name, "size": len(data)}).encode("ascii") + b"\n"
    try:
        _write_all(ARTIFACT_FD, announcement + data)
        os.read(ACK_FD, 1)
    except OSError:
        pass  # the harness took no more (the caps were reached)


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
        self.child: ScriptProcess | None = None
        self.pending_stdin = bytearray()
        self.stdin_eof_requested = False
        self.stdin_watched = False
        self.error: str | None = None
        self.died_of: str | None = None
        self.streams: dict[int, str] = {}
        self.announcement: dict[str, Any] | None = None
        self.artifact_buffer = b""
        self.artifacts_open = False
        self.artifacts_sent = 0
        self.artifact_bytes_sent = 0
        self.artifacts_refused = False
        self.max_artifacts = 0
        self.max_artifact_bytes = 0

    def emit(self, tag: str, payload: bytes | dict[str, Any] | None = None) -> None:
        """Write one frame to the runner; blocks when the runner reads slowly (back-pressure)."""
        _write_all(self.frames_out, protocol.encode_frame(tag, payload))

    def read_header(self) -> protocol.Header:
        """Block until the header line has arrived (or read it from the header file)."""
        if self.header_file is not None:
            with open(self.header_file, "rb") as header:
                self.control_buffer = header.read(protocol.MAX_FRAME_BYTES + 1)
        while b"\n" not in self.control_buffer:
            data = os.read(self.control_in, READ_CHUNK)
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

    def run(self, child: ScriptProcess) -> int:
        """Run the whole protocol with the waiting script process; returns the harness's own exit status."""
        self.child = child
        started = time.monotonic()
        self.emit("R", {"protocol": protocol.PROTOCOL_VERSION, "pid": os.getpid()})
        exit_code: int | None = None
        exit_signal: int | None = None
        try:
            header = self.read_header()
            self.emit("S")
            self.pending_stdin += header.stdin
            self.stdin_eof_requested = header.stdin_eof
            self.handle_control_lines()
            started = time.monotonic()
            returncode = self.run_script(header)
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
                died_of=self.died_of,
            ).to_json(),
        )
        return 0

    def run_script(self, header: protocol.Header) -> int | None:
        """Start the script and pump its pipes until it has exited and its output is drained; then send its files."""
        _write_file(SCRIPT_PATH, header.script.encode("utf-8", "surrogatepass"), 0o644)
        inputs_dir = f"{protocol.SANDBOX_TMP}/{protocol.INPUTS_DIR}"
        for name, data in header.files:
            if name.startswith(protocol.INPUTS_DIR + "/") and not os.path.isdir(inputs_dir):
                os.mkdir(inputs_dir, 0o755)
            _write_file(f"{protocol.SANDBOX_TMP}/{name}", data, 0o444)
        if os.path.isdir(inputs_dir):
            os.chmod(inputs_dir, 0o555)  # noqa: S103 - read-only (no writes), as the files in it
        os.mkdir(OUTPUTS_DIR, 0o755)
        self.max_artifacts, self.max_artifact_bytes = header.max_artifacts, header.max_artifact_bytes
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
        self.send_output_files()
        return returncode

    def drain_output(self) -> None:
        """Forward everything the script has written so far (so an artifact comes after the output before it)."""
        for fd in list(self.streams):
            while fd in self.streams and _readable(fd):
                self.pump_output(fd, self.streams)

    def read_figures(self) -> None:
        """Read what the script process sent on the artifact pipe; send each whole figure on, then acknowledge it."""
        assert self.child is not None
        try:
            data = os.read(self.child.artifacts, READ_CHUNK)
        except BlockingIOError:
            return
        if not data:
            self.stop_figures()
            return
        self.artifact_buffer += data
        while self.artifacts_open:
            if self.announcement is None:
                line, newline, rest = self.artifact_buffer.partition(b"\n")
                if not newline:
                    if len(self.artifact_buffer) > MAX_ANNOUNCEMENT:
                        self.stop_figures()
                    return
                if line == DIED_OF_MEMORY_LINE.rstrip(b"\n"):
                    self.died_of = protocol.DIED_OF_MEMORY
                    self.artifact_buffer = rest
                    continue
                announcement = _announcement(line)
                if announcement is None:
                    self.stop_figures()
                    return
                self.announcement, self.artifact_buffer = announcement, rest
                if not self.within_caps(announcement["size"]):
                    self.send_artifact(announcement["name"], b"", size=announcement["size"])
                    self.stop_figures()
                    return
            size = self.announcement["size"]
            if len(self.artifact_buffer) < size:
                return
            body, self.artifact_buffer = self.artifact_buffer[:size], self.artifact_buffer[size:]
            self.drain_output()
            self.send_artifact(self.announcement["name"], body)
            self.announcement = None
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

    def within_caps(self, size: int) -> bool:
        """Whether one more artifact of `size` bytes stays within the run's caps."""
        return (
            not self.artifacts_refused
            and self.artifacts_sent < self.max_artifacts
            and self.artifact_bytes_sent + size <= self.max_artifact_bytes
        )

    def send_artifact(self, name: str, data: bytes, size: int | None = None) -> None:
        """Send one artifact, or refuse it (and all after it) when it would break the caps."""
        media_type = protocol.artifact_media_type(name)
        if media_type is None or self.artifacts_refused:
            return
        size = len(data) if size is None else size
        refused = not self.within_caps(size)
        self.emit("A", {"name": name, "media_type": media_type, "size": size, "refused": refused})
        if refused:
            self.artifacts_refused = True
            return
        for offset in range(0, len(data), protocol.ARTIFACT_CHUNK):
            self.emit("B", data[offset : offset + protocol.ARTIFACT_CHUNK])
        self.artifacts_sent += 1
        self.artifact_bytes_sent += size

    def send_output_files(self) -> None:
        """Send the regular files the script left in /tmp/outputs, by name; never a link, never more than the caps."""
        try:
            directory = os.open(OUTPUTS_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            return
        try:
            for name in sorted(os.listdir(directory)):
                if self.artifacts_refused:
                    return
                if protocol.artifact_media_type(name) is None:
                    continue
                room = max(0, self.max_artifact_bytes - self.artifact_bytes_sent)
                found = _read_regular_file(directory, name, room + 1)
                if found is not None:
                    data, size = found
                    self.send_artifact(name, data if len(data) == size else b"", size=size)
        finally:
            os.close(directory)

    def pump_output(self, fd: int, streams: dict[int, str]) -> None:
        """Forward one chunk of output, exactly as the script wrote it."""
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return
        if data:
            self.emit(streams[fd], data)
            return
        self.selector.unregister(fd)
        del streams[fd]

    def read_control(self) -> None:
        """Read frames from the runner after the header."""
        data = os.read(self.control_in, READ_CHUNK)
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
                self.stdin_eof_requested = True
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


def _write_file(path: str, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def _readable(fd: int) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        return bool(selector.select(0))


def _announcement(line: bytes) -> dict[str, Any] | None:
    """The {"name", "size"} the script process put before a figure; None for anything else."""
    try:
        value = json.loads(line.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(value, dict):
        return None
    name, size = value.get("name"), value.get("size")
    if not isinstance(name, str) or protocol.artifact_media_type(name) is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return None
    return {"name": name, "size": size}


def _read_regular_file(directory: int, name: str, at_most: int) -> tuple[bytes, int] | None:
    """Up to `at_most` bytes of the regular file `name` in `directory`, and its size; None for anything else.

    O_NOFOLLOW refuses a symbolic link, O_NONBLOCK keeps a FIFO from blocking the open, and fstat on the
    opened file decides: what the name pointed to when checked is what is read.
    """
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=directory)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        chunks: list[bytes] = []
        remaining = at_most
        while remaining > 0 and (chunk := os.read(fd, min(READ_CHUNK, remaining))):
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        # A file still growing is as large as what was read, at least.
        return data, (max(info.st_size, len(data)) if len(data) >= at_most else len(data))
    except OSError:
        return None
    finally:
        os.close(fd)


def _apply_limits(limits: dict[str, Any]) -> None:
    # RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL a second later at the hard limit.
    cpu_s = max(1, -(-int(limits["cpu_time_ms"]) // 1000))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    for name, limit in (
        ("memory_bytes", resource.RLIMIT_AS),
        ("processes", resource.RLIMIT_NPROC),
        ("file_size_bytes", resource.RLIMIT_FSIZE),
    ):
        if limits.get(name) is not None:
            resource.setrlimit(limit, (int(limits[name]), int(limits[name])))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


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
        target = CHILD_ENV_OVERRIDES["MPLCONFIGDIR"]
        os.makedirs(target, exist_ok=True)
        for name in os.listdir(cache):
            if os.path.isfile(f"{cache}/{name}"):
                with open(f"{cache}/{name}", "rb") as source:
                    _write_file(f"{target}/{name}", source.read(), 0o644)


def main(argv: list[str]) -> int:
    """Entry point inside the sandbox: `harness.py [--header FILE]`."""
    if argv and (len(argv) != 2 or argv[0] != "--header"):
        sys.stderr.write("usage: harness.py [--header FILE]\n")
        return 2
    # Forked first, so the script process inherits nothing the harness learns later; the harness's
    # objects are frozen first, so the script's garbage collections never touch (and copy) their pages.
    _use_packages()
    gc.freeze()
    child = ScriptProcess()
    _make_undumpable()
    return Harness(child_exits=_watch_child_exits(), header_file=argv[1] if argv else None).run(child)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
