"""How prun shows a run: as a local terminal would (`TextView`), or as JSON lines (`JsonView`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from pydantic import BaseModel

from podrun_client.client import ArtifactCreated, Event, OutputChunk
from podrun_client.generated import ExecutionStatus, ExecutionSummary, KernelSummary, OutputStream
from podrun_client.outcome import Outcome

_CLEAR_LINE = b"\r\x1b[2K"


class View(Protocol):
    """What `prun run` and `prun watch` tell a view."""

    def submitted(self, execution: ExecutionSummary, operation: str = "submitExecution") -> None:
        """The run was accepted (`prun run` and `prun tool`; `operation` is the mutation that started it)."""

    def kernel(self, kernel: KernelSummary, operation: str) -> None:
        """`prun kernel`'s kernel, as `operation` (startKernel, kernel, stopKernel) gave it."""

    def event(self, event: Event) -> None:
        """An event of the run, in `seq` order."""

    def saved(self, event: ArtifactCreated, path: Path) -> None:
        """The artifact of `event` was saved at `path` (`--artifacts`)."""

    def message(self, text: str) -> None:
        """Something prun itself has to say (always on stderr)."""

    def finished(self, outcome: Outcome) -> None:
        """The run ended this way."""


class TextView:
    """The script's stdout on stdout and its stderr on stderr, written as they arrive.

    A partial line (`OutputLine.partial`) is written without a newline, so the next piece of the same
    stream continues it, as on a terminal. With `progress`, a transient status line (queued, starting)
    is shown on stderr until the script's output begins.
    """

    def __init__(self, stdout: BinaryIO, stderr: BinaryIO, *, progress: bool) -> None:
        self._streams = {OutputStream.STDOUT: stdout, OutputStream.STDERR: stderr}
        self._stderr = stderr
        self._progress = progress
        self._progress_shown = False

    def submitted(self, execution: ExecutionSummary, operation: str = "submitExecution") -> None:
        self._show_progress(f"queued {execution.id}")

    def kernel(self, kernel: KernelSummary, operation: str) -> None:
        """Nothing: the console says what matters of its kernel in words."""

    def event(self, event: Event) -> None:
        if isinstance(event, OutputChunk):
            self._clear_progress()
            written: set[BinaryIO] = set()
            for line in event.lines:
                stream = self._streams[line.stream]
                stream.write(line.text.encode("utf-8", "replace") + (b"" if line.partial else b"\n"))
                written.add(stream)
            for stream in written:
                stream.flush()
        elif isinstance(event, ArtifactCreated):
            # On a terminal only: piped, stderr is the script's alone.
            if self._progress:
                self._stderr.write(f"[artifact {event.artifact.name}, {event.artifact.size_bytes} bytes]\n".encode())
                self._stderr.flush()
        elif event.status is ExecutionStatus.STARTING:
            self._show_progress(f"starting {event.execution.id}")
        else:
            self._clear_progress()

    def saved(self, event: ArtifactCreated, path: Path) -> None:
        if self._progress:
            self._stderr.write(f"[saved as {path}]\n".encode())
            self._stderr.flush()

    def message(self, text: str) -> None:
        self._clear_progress()
        self._stderr.write(f"prun: {text}\n".encode())
        self._stderr.flush()

    def finished(self, outcome: Outcome) -> None:
        self._clear_progress()
        if outcome.message is not None:
            self.message(outcome.message)

    def _show_progress(self, text: str) -> None:
        if self._progress:
            self._stderr.write(_CLEAR_LINE + f"prun: {text}".encode())
            self._stderr.flush()
            self._progress_shown = True

    def _clear_progress(self) -> None:
        if self._progress_shown:
            self._stderr.write(_CLEAR_LINE)
            self._stderr.flush()
            self._progress_shown = False


class JsonView:
    """One JSON object per line on stdout, shaped like the GraphQL API's `data`.

    First `{"submitExecution": {...}}` (`prun run`; `{"runTool": {...}}` for `prun tool`), then
    `{"executionEvents": {...}}` for every event, with the `__typename`s and camelCase field names of the
    schema. prun's own messages go to stderr.
    """

    def __init__(self, stdout: BinaryIO, stderr: BinaryIO) -> None:
        self._stdout = stdout
        self._stderr = stderr

    def submitted(self, execution: ExecutionSummary, operation: str = "submitExecution") -> None:
        write_json(self._stdout, {operation: execution})

    def kernel(self, kernel: KernelSummary, operation: str) -> None:
        write_json(self._stdout, {operation: kernel})

    def event(self, event: Event) -> None:
        write_json(self._stdout, {"executionEvents": event})

    def saved(self, event: ArtifactCreated, path: Path) -> None:
        """Nothing: stdout holds the API's data alone, and the ArtifactCreated event came before."""

    def message(self, text: str) -> None:
        self._stderr.write(f"prun: {text}\n".encode())
        self._stderr.flush()

    def finished(self, outcome: Outcome) -> None:
        if outcome.message is not None:
            self.message(outcome.message)


def write_json(stream: BinaryIO, data: dict[str, Any]) -> None:
    """Write `data` as one line of JSON; pydantic models as the API spells them."""
    stream.write(json.dumps(data, default=_jsonable, ensure_ascii=False).encode() + b"\n")
    stream.flush()


def _jsonable(value: object) -> object:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
