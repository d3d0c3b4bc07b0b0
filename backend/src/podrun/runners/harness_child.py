"""The script's side of the sandbox: the process forked before the header, which becomes the user's script.

Stdlib only, shipped beside harness.py. Until its limits arrive the process waits on a pipe; then it
applies them as rlimits, drops every descriptor but its own pipes and the harness's modules, and runs
/tmp/main.py as `__main__` the way `python -u` would. Figures (matplotlib) and a death by MemoryError
travel to the harness over a pipe of their own (fd 4, acknowledged on fd 5).
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import gc
import importlib.util
import io
import json
import os
import resource
import signal
import sys
import types
from importlib.machinery import SourceFileLoader
from typing import Any, NoReturn

if __package__:  # imported on the host (its tests)
    from podrun.runners import harness_cells, protocol
else:  # in the sandbox, beside protocol.py (harness.py put this directory on sys.path)
    import harness_cells  # type: ignore[import-not-found, no-redef]
    import protocol  # type: ignore[import-not-found, no-redef]

SCRIPT_PATH = protocol.SANDBOX_TMP + "/main.py"
READ_CHUNK = 64 * 1024
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
# What the script process says on the artifact pipe instead of an announcement when it dies of a MemoryError.
DIED_OF_MEMORY_LINE = b'{"died_of":"MEMORY"}\n'


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to `fd` (a pipe takes it in pieces)."""
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
        """Let the waiting process run the script under the header's limits (or, for a kernel, wait for cells)."""
        limits = {
            # A kernel's CPU time is limited per cell, by the harness (harness_kernel.py).
            "cpu_time_ms": None if header.kernel else header.cpu_time_ms,
            "memory_bytes": header.memory_bytes,
            "processes": header.processes,
            "file_size_bytes": header.file_size_bytes,
            "kernel": header.kernel,
        }
        try:
            write_all(self.go, json.dumps(limits).encode("ascii") + b"\n")
        finally:
            if not header.kernel:
                os.close(self.go)
                self.go = -1

    def send_cell(self, cell: protocol.Cell) -> None:
        """Hand a kernel's process its next cell (it reads them one by one, between cells)."""
        write_all(self.go, json.dumps(cell.to_json()).encode("ascii") + b"\n")

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
    while b"\n" not in request and (chunk := os.read(GO_FD, READ_CHUNK)):
        request += chunk
    if not request.endswith(b"\n"):
        os._exit(0)  # the harness never started the script
    request, _, cells_read = request.partition(b"\n")  # a kernel's first cell may have come with its limits
    limits = json.loads(request)
    _apply_limits(limits)
    os.chdir(protocol.SANDBOX_TMP)
    os.environ.update(CHILD_ENV_OVERRIDES)
    sys.meta_path.insert(0, _PyplotFinder())
    sys.dont_write_bytecode = True
    _unbuffered_std_streams()
    sys.argv = [SCRIPT_PATH]
    sys.orig_argv = [sys.executable, "-u", SCRIPT_PATH]
    if limits.get("kernel"):
        # Cells keep coming on the same pipe; the processes a cell starts must not read them.
        os.set_inheritable(GO_FD, False)
        cells = harness_cells.Cells(
            GO_FD,
            cells_read,
            report=lambda line: write_all(ARTIFACT_FD, line),
            send_figures=_send_open_figures,
        )
        _forget_harness_modules()
        sys.path.insert(0, protocol.SANDBOX_TMP)
        cells.serve()
        _exit(0, interrupted=False)
    os.close(GO_FD)
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
    for name in protocol.HARNESS_MODULES:
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
            _say_died_of_memory()
        return UNCAUGHT_EXIT_CODE
    return 0


def _say_died_of_memory() -> None:
    # Only this process can tell a refused allocation (an address-space rlimit) from other failures.
    with contextlib.suppress(OSError):
        write_all(ARTIFACT_FD, DIED_OF_MEMORY_LINE)


def _send_open_figures() -> None:
    """Send the figures a kernel's cell left open (as a notebook shows them under the cell)."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        with contextlib.suppress(Exception):
            _send_figures(pyplot)


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
        write_all(ARTIFACT_FD, announcement + data)
        os.read(ACK_FD, 1)
    except OSError:
        pass  # the harness took no more (the caps were reached)


def write_file(path: str, data: bytes, mode: int) -> None:
    """Create the file `path` (never through a link, never over a file) with `data`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def _apply_limits(limits: dict[str, Any]) -> None:
    # RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL a second later at the hard limit.
    if limits.get("cpu_time_ms") is not None:
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
