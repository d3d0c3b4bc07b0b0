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
Its own stdin and stdout carry line-based text frames (on Kubernetes its stdout is the pod's only
log stream), one frame per line, a tag, a space, a payload:

    runner -> harness (harness stdin)
        H <json>      header, exactly once, first: {"script": str, "stdin": base64 | null,
                      "stdin_eof": bool, "cpu_time_ms": int, "memory_bytes": int | null,
                      "processes": int | null, "file_size_bytes": int | null}
                      (a null limit means "enforced elsewhere, for example by a cgroup")
        I <base64>    bytes for the script's stdin
        C             close the script's stdin (EOF); so does the end of the harness's stdin

    harness -> runner (harness stdout)
        R <json>      ready, before the header is read: {"protocol": 1, "pid": int}
        S             the header has arrived whole and the script starts now (a pod's log thus
                      says whether its script ever started: a Kubernetes warm pod gets its
                      header over the attach stream, which a dying worker may leave unsent)
        O <base64>    a chunk of the script's stdout, sent as soon as it was read
        E <base64>    a chunk of the script's stderr
        X <json>      the end, always last: {"exit_code": int | null, "signal": int | null,
                      "wall_ms": int, "cpu_ms": int, "peak_rss_kib": int, "error": str | null}

Malformed runner frames end the run with an `error` in the X frame.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import builtins
import contextlib
import ctypes
import errno
import gc
import io
import json
import os
import resource
import selectors
import signal
import sys
import time
import types
from dataclasses import dataclass
from importlib.machinery import SourceFileLoader
from typing import Any, NoReturn

PROTOCOL_VERSION = 1
# The sandbox's /tmp is its own private tmpfs.
SANDBOX_TMP = "/tmp"  # noqa: S108
SCRIPT_PATH = SANDBOX_TMP + "/main.py"
READ_CHUNK = 64 * 1024
# A header carries the script and the initial stdin, both capped far below this by the API.
MAX_FRAME_BYTES = 16 * 1024 * 1024
# After the script exits, how long background processes that still hold its pipes may keep writing.
DRAIN_AFTER_EXIT_S = 0.2
PR_SET_DUMPABLE = 4
# The script inherits the harness's environment, which the runner set up from scratch, and runs
# as under `python -u`, without writing bytecode.
CHILD_ENV_OVERRIDES = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
# How a script that ends by an uncaught exception exits, as the interpreter would.
UNCAUGHT_EXIT_CODE = 1
# Where the waiting script process keeps the pipe its limits arrive on.
GO_FD = 3


class FrameError(ValueError):
    """A frame that does not follow the protocol."""


@dataclass(frozen=True)
class Header:
    """What the runner asks the harness to run, and under which limits."""

    script: str
    stdin: bytes
    stdin_eof: bool
    cpu_time_ms: int
    memory_bytes: int | None = None
    processes: int | None = None
    file_size_bytes: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The header's JSON payload."""
        return {
            "script": self.script,
            "stdin": base64.b64encode(self.stdin).decode("ascii") if self.stdin else None,
            "stdin_eof": self.stdin_eof,
            "cpu_time_ms": self.cpu_time_ms,
            "memory_bytes": self.memory_bytes,
            "processes": self.processes,
            "file_size_bytes": self.file_size_bytes,
        }

    @classmethod
    def from_json(cls, value: object) -> Header:
        """Parse and validate a header payload."""
        if not isinstance(value, dict):
            raise FrameError("header is not an object")
        script = value.get("script")
        stdin = value.get("stdin")
        stdin_eof = value.get("stdin_eof", False)
        if not isinstance(script, str) or not isinstance(stdin_eof, bool):
            raise FrameError("header has no script")
        if stdin is not None and not isinstance(stdin, str):
            raise FrameError("header stdin is not base64 text")
        return cls(
            script=script,
            stdin=decode_b64(stdin) if stdin else b"",
            stdin_eof=stdin_eof,
            cpu_time_ms=_positive_int(value.get("cpu_time_ms"), "cpu_time_ms"),
            memory_bytes=_optional_positive_int(value.get("memory_bytes"), "memory_bytes"),
            processes=_optional_positive_int(value.get("processes"), "processes"),
            file_size_bytes=_optional_positive_int(value.get("file_size_bytes"), "file_size_bytes"),
        )


@dataclass(frozen=True)
class Exit:
    """How the script ended and what it used, as the harness saw it."""

    exit_code: int | None
    signal: int | None
    wall_ms: int
    cpu_ms: int
    peak_rss_kib: int
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The exit frame's JSON payload."""
        return {
            "exit_code": self.exit_code,
            "signal": self.signal,
            "wall_ms": self.wall_ms,
            "cpu_ms": self.cpu_ms,
            "peak_rss_kib": self.peak_rss_kib,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, value: object) -> Exit:
        """Parse and validate an exit payload."""
        if not isinstance(value, dict):
            raise FrameError("exit is not an object")
        error = value.get("error")
        if error is not None and not isinstance(error, str):
            raise FrameError("exit error is not text")
        return cls(
            exit_code=_optional_int(value.get("exit_code"), "exit_code"),
            signal=_optional_int(value.get("signal"), "signal"),
            wall_ms=_non_negative_int(value.get("wall_ms"), "wall_ms"),
            cpu_ms=_non_negative_int(value.get("cpu_ms"), "cpu_ms"),
            peak_rss_kib=_non_negative_int(value.get("peak_rss_kib"), "peak_rss_kib"),
            error=error,
        )


def _optional_int(value: object, name: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise FrameError(f"{name} is not an integer")
    return value


def _non_negative_int(value: object, name: str) -> int:
    number = _optional_int(value, name)
    if number is None or number < 0:
        raise FrameError(f"{name} is not a non-negative integer")
    return number


def _positive_int(value: object, name: str) -> int:
    number = _optional_int(value, name)
    if number is None or number <= 0:
        raise FrameError(f"{name} is not a positive integer")
    return number


def _optional_positive_int(value: object, name: str) -> int | None:
    return None if value is None else _positive_int(value, name)


def decode_b64(text: str) -> bytes:
    """Strict base64 decoding; anything else is a frame error."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FrameError("invalid base64") from exc


def encode_frame(tag: str, payload: bytes | dict[str, Any] | None = None) -> bytes:
    """One frame as a line: bytes are base64-encoded, dicts JSON-encoded (ASCII only)."""
    if payload is None:
        return tag.encode("ascii") + b"\n"
    if isinstance(payload, bytes):
        body = base64.b64encode(payload)
    else:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return tag.encode("ascii") + b" " + body + b"\n"


def parse_frame(line: bytes) -> tuple[str, bytes]:
    """Split one line into its tag and raw payload (base64 or JSON text, not yet decoded)."""
    line = line.rstrip(b"\n")
    if len(line) > MAX_FRAME_BYTES:
        raise FrameError("frame too long")
    tag, _, payload = line.partition(b" ")
    if len(tag) != 1 or not tag.isalpha() or not tag.isupper():
        raise FrameError("invalid frame tag")
    return tag.decode("ascii"), payload


def parse_json_payload(payload: bytes) -> object:
    """Decode a JSON payload, turning any failure into a frame error."""
    try:
        return json.loads(payload.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FrameError("invalid JSON payload") from exc


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
        self.returncode: int | None = None
        self.stdin_closed = False
        self.pid = os.fork()
        if self.pid == 0:
            for fd in (self.stdin, self.stdout, self.stderr, self.go):
                os.close(fd)
            _become_script(go_read, stdin_read, stdout_write, stderr_write)
        for fd in (stdin_read, stdout_write, stderr_write, go_read):
            os.close(fd)

    def start(self, header: Header) -> None:
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
        for fd in (self.stdout, self.stderr, self.go):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.close_stdin()


def _become_script(go: int, stdin: int, stdout: int, stderr: int) -> NoReturn:
    """The forked process: wait for the limits, then turn into the script (never returns into the harness)."""
    os.setsid()  # its own session and process group, which the harness kills as a whole
    for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2), (go, GO_FD)):
        os.dup2(fd, target)
    # Nothing of the harness stays reachable, not even while waiting: its frame pipes, the header.
    os.closerange(GO_FD + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    request = b""
    while chunk := os.read(GO_FD, READ_CHUNK):
        request += chunk
    os.close(GO_FD)
    if not request:
        os._exit(0)  # the harness never started the script
    _apply_limits(json.loads(request))
    os.chdir(SANDBOX_TMP)
    os.environ.update(CHILD_ENV_OVERRIDES)
    sys.dont_write_bytecode = True
    _unbuffered_std_streams()
    sys.argv = [SCRIPT_PATH]
    sys.orig_argv = [sys.executable, "-u", SCRIPT_PATH]
    sys.path.insert(0, SANDBOX_TMP)
    interrupted = False
    try:
        status = _run_as_main(SCRIPT_PATH)
    except SystemExit as exc:
        status = _exit_status(exc)
    except KeyboardInterrupt:
        status, interrupted = UNCAUGHT_EXIT_CODE, True
    _exit(status, interrupted=interrupted)


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
        self.child: ScriptProcess | None = None
        self.pending_stdin = bytearray()
        self.stdin_eof_requested = False
        self.stdin_watched = False
        self.error: str | None = None

    def emit(self, tag: str, payload: bytes | dict[str, Any] | None = None) -> None:
        """Write one frame to the runner; blocks when the runner reads slowly (back-pressure)."""
        _write_all(self.frames_out, encode_frame(tag, payload))

    def read_header(self) -> Header:
        """Block until the header line has arrived (or read it from the header file)."""
        if self.header_file is not None:
            with open(self.header_file, "rb") as header:
                self.control_buffer = header.read(MAX_FRAME_BYTES + 1)
        while b"\n" not in self.control_buffer:
            data = os.read(self.control_in, READ_CHUNK)
            if not data:
                raise FrameError("no header")
            self.control_buffer += data
            if len(self.control_buffer) > MAX_FRAME_BYTES:
                raise FrameError("header too long")
        line, _, self.control_buffer = self.control_buffer.partition(b"\n")
        tag, payload = parse_frame(line)
        if tag != "H":
            raise FrameError("first frame is not a header")
        return Header.from_json(parse_json_payload(payload))

    def run(self, child: ScriptProcess) -> int:
        """Run the whole protocol with the waiting script process; returns the harness's own exit status."""
        self.child = child
        started = time.monotonic()
        self.emit("R", {"protocol": PROTOCOL_VERSION, "pid": os.getpid()})
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
        except FrameError as exc:
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
            Exit(
                exit_code=exit_code,
                signal=exit_signal,
                wall_ms=int((time.monotonic() - started) * 1000),
                cpu_ms=int((usage.ru_utime + usage.ru_stime) * 1000),
                peak_rss_kib=usage.ru_maxrss,
                error=self.error,
            ).to_json(),
        )
        return 0

    def run_script(self, header: Header) -> int | None:
        """Start the script and pump its pipes until it has exited and its output is drained."""
        fd = os.open(SCRIPT_PATH, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, header.script.encode("utf-8", "surrogatepass"))
        finally:
            os.close(fd)
        assert self.child is not None
        self.child.start(header)
        streams = {self.child.stdout: "O", self.child.stderr: "E"}
        for fd in (*streams, self.child.stdin):
            os.set_blocking(fd, False)
        for fd in streams:
            self.selector.register(fd, selectors.EVENT_READ, "output")
        if self.control_open:
            self.selector.register(self.control_in, selectors.EVENT_READ, "control")
        self.flush_stdin()
        exit_wakeup = _pidfd(self.child.pid)
        if exit_wakeup is not None:
            self.selector.register(exit_wakeup, selectors.EVENT_READ, "exit")
        if self.child_exits is not None:
            self.selector.register(self.child_exits, selectors.EVENT_READ, "reap")
        drain_deadline: float | None = None
        while drain_deadline is None or (streams and time.monotonic() < drain_deadline):
            timeout = None if exit_wakeup is not None else 0.05
            if drain_deadline is not None:
                timeout = max(0.0, drain_deadline - time.monotonic())
            for key, _ in self.selector.select(timeout):
                if key.data == "output":
                    self.pump_output(key.fd, streams)
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
        return self.child.wait()

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
        if len(self.control_buffer) > MAX_FRAME_BYTES:
            raise FrameError("control frame too long")
        self.handle_control_lines()
        self.flush_stdin()

    def handle_control_lines(self) -> None:
        """Apply every complete frame in the control buffer."""
        while b"\n" in self.control_buffer:
            line, _, self.control_buffer = self.control_buffer.partition(b"\n")
            tag, payload = parse_frame(line)
            if tag == "I":
                if not self.stdin_eof_requested:
                    self.pending_stdin += decode_b64(payload.decode("ascii", "replace"))
            elif tag == "C":
                self.stdin_eof_requested = True
            else:
                raise FrameError("unexpected frame")

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


def main(argv: list[str]) -> int:
    """Entry point inside the sandbox: `harness.py [--header FILE]`."""
    if argv and (len(argv) != 2 or argv[0] != "--header"):
        sys.stderr.write("usage: harness.py [--header FILE]\n")
        return 2
    # Forked first, so the script process inherits nothing the harness learns later; the harness's
    # objects are frozen first, so the script's garbage collections never touch (and copy) their pages.
    gc.freeze()
    child = ScriptProcess()
    _make_undumpable()
    return Harness(child_exits=_watch_child_exits(), header_file=argv[1] if argv else None).run(child)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
