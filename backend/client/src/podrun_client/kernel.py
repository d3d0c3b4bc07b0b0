"""`prun kernel`: a Python console whose statements run as cells of a kernel, a Python process on the server.

At a terminal it reads statements as the Python REPL does (`>>> `, `... ` for the rest of a block) and sends
each whole one as a cell; piped, the code is cut into top-level statements sent one after the other, up to
the first that fails. A cell's output is shown as it comes, like `prun run`'s. Ctrl-C while a cell runs
interrupts it (`cancelExecution`): the kernel keeps its state and the console goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from podrun_client import cells
from podrun_client.client import PodrunClient, error_code
from podrun_client.generated import (
    ExecutionStatus,
    ExecutionSummary,
    GraphQLClientGraphQLMultiError,
    KernelStatus,
    KernelSummary,
)
from podrun_client.interrupts import CellInterrupts
from podrun_client.limits import format_ms
from podrun_client.outcome import Outcome, kernel_ended, outcome
from podrun_client.show import show
from podrun_client.views import View

LIVE = frozenset({KernelStatus.STARTING, KernelStatus.IDLE, KernelStatus.BUSY})
PROMPT = ">>> "
MORE = "... "


async def console(
    client: PodrunClient,
    kernel: KernelSummary,
    view: View,
    *,
    artifacts: Path | None,
    stop_at_end: bool,
    prompts: bool,
) -> int:
    """The console on `kernel` (statements typed at a terminal, or piped code) to its end; prun's exit status.

    `stop_at_end`: stop the kernel when the console ends, however it ends (else Ctrl-D detaches from it).
    `prompts`: show `>>> ` and `... ` (not with --json, whose stdout is the API's data).
    """
    on = KernelConsole(client, kernel, view, artifacts=artifacts)
    try:
        if not sys.stdin.isatty():
            await on.ready()
            return await on.batch(read_all())
        if kernel.status is KernelStatus.STARTING:
            view.message(f"starting kernel {kernel.id}")
        ready = await on.ready()
        leaving = "stops the kernel" if stop_at_end else "detaches (the kernel keeps running)"
        idle = format_ms(ready.idle_timeout_s * 1000)
        view.message(
            f"kernel {kernel.id} ({ready.runtime.id}) ready; it stops after {idle} without a statement. "
            f"Ctrl-C interrupts a statement, Ctrl-D {leaving}."
        )
        await on.interactive(prompts=prompts)
        if not stop_at_end:
            view.message(
                f"detached: kernel {kernel.id} keeps running (`prun kernel --attach {kernel.id}` to come back to it, "
                f"`prun kernel-stop {kernel.id}` to stop it)"
            )
        return 0
    except KernelGone as gone:
        stop_at_end = False  # it has ended already
        ended = kernel_ended(gone.kernel)
        for message in (gone.cell.message if gone.cell is not None else None, ended.message):
            if message is not None:
                view.message(message)
        return gone.cell.exit_code if gone.cell is not None and gone.cell.exit_code else ended.exit_code
    finally:
        # Also when prun fails or is stopped: a kernel left behind would hold one of your runs until its timeout.
        if stop_at_end:
            view.kernel(await on.stop(), "stopKernel")


class KernelGone(Exception):
    """The kernel stopped (its idle timeout, or someone stopped it) or died; `kernel` says why.

    `cell` is the outcome of the cell it ended under, if it ended under one.
    """

    def __init__(self, kernel: KernelSummary, cell: Outcome | None = None) -> None:
        super().__init__(kernel.error)
        self.kernel = kernel
        self.cell = cell


class KernelConsole:
    """One kernel's console: sends it cells and shows them as they run."""

    def __init__(self, client: PodrunClient, kernel: KernelSummary, view: View, *, artifacts: Path | None) -> None:
        self.client = client
        self.kernel = kernel
        self.view = view
        self.artifacts = artifacts

    async def ready(self) -> KernelSummary:
        """Wait while the kernel starts; KernelGone if it ended instead (or had ended)."""
        delay = 0.05
        while self.kernel.status is KernelStatus.STARTING:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
            await self.reload()
        if self.kernel.status not in LIVE:
            raise KernelGone(self.kernel)
        return self.kernel

    async def reload(self) -> KernelSummary:
        """The kernel as it is now."""
        found = (await self.client.kernel(id=self.kernel.id)).kernel
        if found is not None:  # None: deleted meanwhile with its owner's account; keep what was known
            self.kernel = found
        return self.kernel

    async def stop(self) -> KernelSummary:
        """Stop the kernel (a cell still running is interrupted)."""
        self.kernel = (await self.client.stop_kernel(id=self.kernel.id)).stop_kernel
        return self.kernel

    async def run_cell(self, code: str) -> ExecutionSummary:
        """Send `code` as a cell and show it to its end; KernelGone if the kernel has ended, or ended under it."""
        with CellInterrupts(self.client, self.view) as interrupts:
            try:
                cell = (await self.client.run_in_kernel(kernel_id=self.kernel.id, code=code)).run_in_kernel
            except GraphQLClientGraphQLMultiError as error:
                # CONFLICT: the kernel has stopped or died (by its idle timeout while the prompt waited, say).
                if error_code(error) == "CONFLICT" and (await self.reload()).status not in LIVE:
                    raise KernelGone(self.kernel) from error
                raise
            self.view.submitted(cell, operation="runInKernel")
            interrupts.follow(cell.id)
            ended = await show(self.client, cell.id, 0, self.view, artifacts=self.artifacts)
            await interrupts.settle()
        if ended.status is not ExecutionStatus.SUCCEEDED and (await self.reload()).status not in LIVE:
            raise KernelGone(self.kernel, outcome(ended))
        return ended

    async def interactive(self, *, prompts: bool) -> None:
        """Read statements from the terminal and run each as a cell, until Ctrl-D (EOF)."""
        _enable_line_editing()
        lines: list[str] = []
        while True:
            prompt = (MORE if lines else PROMPT) if prompts else ""
            try:
                lines.append(_read(functools.partial(input, prompt)))
            except KeyboardInterrupt:  # as in Python: the statement typed so far is dropped
                sys.stderr.write("\nKeyboardInterrupt\n")
                lines.clear()
                continue
            except EOFError:
                if prompts:
                    sys.stdout.write("\n")  # end the line of the prompt, as Python does
                return
            source = "\n".join(lines)
            if not cells.complete(source):
                continue
            lines.clear()
            if source.strip():
                ended = await self.run_cell(source.rstrip())
                if ended.status is not ExecutionStatus.CANCELLED:  # interrupted: its traceback said so
                    self.view.finished(outcome(ended))

    async def batch(self, source: str) -> int:
        """Run piped code statement by statement, stopping at the first failing cell; 0 or that cell's exit code."""
        statements = cells.statements(source)
        for number, statement in enumerate(statements, start=1):
            result = outcome(await self.run_cell(statement))
            self.view.finished(result)
            if result.exit_code != 0:
                if number < len(statements):
                    self.view.message(f"stopped at a failing cell; {len(statements) - number} more not sent")
                return result.exit_code
        return 0


def _read(read: Callable[[], str]) -> str:
    """A blocking read from stdin, where Ctrl-C raises KeyboardInterrupt as in any Python program.

    It holds the event loop on purpose: readline needs the main thread (and its signals), and nothing else
    runs while the console waits for the next statement.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return read()
    finally:
        signal.signal(signal.SIGINT, previous)


def read_all() -> str:
    """All of prun's stdin (piped code); Ctrl-C meanwhile raises KeyboardInterrupt."""
    return _read(sys.stdin.read)


def _enable_line_editing() -> None:
    """Arrow keys and history at the prompt, where the readline module exists (not on Windows)."""
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401, PLC0415 - importing it is what makes input() edit lines
