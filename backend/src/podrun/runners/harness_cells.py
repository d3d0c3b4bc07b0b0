"""A kernel's process: runs cells one after another in one `__main__`, the way the Python REPL would.

Stdlib only, shipped beside harness.py. harness_child.py turns the waiting script process into this loop
when the header says "kernel". Cells arrive as JSON lines on the pipe the limits came on; each runs in
the same globals, the value of its last expression is shown with `sys.displayhook` (as the REPL shows
it), an uncaught exception is printed with the cell's own frames only and ends that cell (not the
kernel), and KeyboardInterrupt (the harness's SIGINT, harness_kernel.py) ends it the same way. After
each cell the figures it left open are sent, then one line on the artifact pipe says how it ended:
the harness reads it after the output and figures before it.
"""

from __future__ import annotations

import ast
import builtins
import json
import linecache
import os
import signal
import sys
import types
from collections.abc import Callable

# What a kernel's process writes on the artifact pipe when a cell has ended: this key, then how.
CELL_DONE_KEY = "cell_done"
READ_CHUNK = 64 * 1024


class Cells:
    """The loop of one kernel's process: read a cell, run it, say how it ended; until the pipe closes."""

    def __init__(
        self,
        cells_fd: int,
        already_read: bytes,
        *,
        report: Callable[[bytes], None],
        send_figures: Callable[[], None],
    ) -> None:
        self.cells_fd = cells_fd
        self.report = report
        self.send_figures = send_figures
        self.buffer = already_read
        self.main = types.ModuleType("__main__")
        self.main.__dict__.update(__builtins__=builtins, __file__=None)
        sys.modules["__main__"] = self.main

    def serve(self) -> None:
        """Run cells until the harness closes the pipe (the kernel is stopped)."""
        # Between cells a late interrupt is ignored; each cell runs with Python's own handler.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        while (cell := self.next_cell()) is not None:
            code, number = cell.get("code"), cell.get("number")
            if not isinstance(code, str) or not isinstance(number, int):
                return  # not a cell from the harness: nothing more to run
            exit_code, interrupted, died_of = self.run(code, number)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            self.send_figures()
            done = {"exit_code": exit_code, "interrupted": interrupted, "died_of": died_of}
            self.report(json.dumps({CELL_DONE_KEY: done}).encode("ascii") + b"\n")

    def next_cell(self) -> dict[str, object] | None:
        """The next cell's JSON, or None once the pipe has closed."""
        while b"\n" not in self.buffer:
            chunk = os.read(self.cells_fd, READ_CHUNK)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        value = json.loads(line)
        return value if isinstance(value, dict) else None

    def run(self, code: str, number: int) -> tuple[int, bool, str | None]:
        """Run one cell; its exit code (0, 1 for an uncaught exception, or the code of a SystemExit), whether it
        was interrupted, and "MEMORY" when it died of a MemoryError."""
        filename = f"<cell {number}>"
        # The traceback module reads a cell's lines from here, as it reads a file's.
        linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            try:
                self.execute(code, filename)
            finally:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
        except SystemExit as exc:
            return _exit_code(exc), False, None
        except BaseException as exc:  # the REPL's own top level, reproduced
            _print_exception(exc, filename)
            if isinstance(exc, MemoryError):
                return 1, False, "MEMORY"
            return 1, isinstance(exc, KeyboardInterrupt), None
        return 0, False, None

    def execute(self, code: str, filename: str) -> None:
        """Run the cell's statements in the kernel's `__main__`; show its last expression's value, as the REPL does."""
        tree = ast.parse(code, filename, "exec")
        last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        if last is not None:
            tree.body.pop()
        namespace = self.main.__dict__
        exec(compile(tree, filename, "exec", dont_inherit=True), namespace)  # noqa: S102 - running the cell is the point
        if last is not None:
            expression = ast.Expression(last.value)
            value = eval(compile(expression, filename, "eval", dont_inherit=True), namespace)  # noqa: S307
            sys.displayhook(value)


def _exit_code(exc: SystemExit) -> int:
    """A cell's SystemExit ends the cell (never the kernel) with the status it names."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def _print_exception(exc: BaseException, filename: str) -> None:
    """Print the traceback from the cell's first frame on (never this module's)."""
    import traceback  # noqa: PLC0415 - only a failing cell pays for importing it

    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    try:
        traceback.print_exception(type(exc), exc.with_traceback(tb), tb, file=sys.stderr)
    except Exception:
        print(f"{type(exc).__name__}: <unprintable>", file=sys.stderr)
    except KeyboardInterrupt:
        pass
