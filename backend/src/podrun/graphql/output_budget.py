"""The output bytes one operation may return, and one read of a live run's log per operation.

`stdout` and `stderr` of up to a page of runs at the largest output limit would make one small request
return hundreds of megabytes. Each operation (each event of a subscription) gets a budget; an output
field takes its size from it before its text is read, and a field past it answers BAD_USER_INPUT with
`reason: OUTPUT_BUDGET` (page with a smaller `first`, or stream the output with executionEvents) while
the fields within it are still returned. The budget lives in a context variable: every operation runs
in a task of its own (one per HTTP request, one per WebSocket operation).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from uuid import UUID

from strawberry.extensions import SchemaExtension

from podrun.core.errors import BadUserInput
from podrun.core.output import Stream

LiveOutput = dict[Stream, str] | None

_current: ContextVar[OperationOutput | None] = ContextVar("podrun_operation_output", default=None)


class OperationOutput:
    """What one operation has returned of output so far, and its reads of live runs' logs."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.remaining = limit
        self._live: dict[UUID, asyncio.Task[LiveOutput]] = {}

    def check(self) -> None:
        """Refuse before reading anything if the budget is spent already."""
        if self.remaining <= 0:
            raise self._refusal()

    def take(self, size: int) -> None:
        """Count `size` bytes about to be returned; refused (and not counted) past the budget."""
        if size > self.remaining:
            raise self._refusal()
        self.remaining -= size

    async def live(self, execution_id: UUID, read: Callable[[], Awaitable[LiveOutput]]) -> LiveOutput:
        """A live run's output, read from its log once for all of this operation's fields."""
        task = self._live.get(execution_id)
        if task is None:
            task = self._live[execution_id] = asyncio.ensure_future(read())
        return await asyncio.shield(task)

    def _refusal(self) -> BadUserInput:
        return BadUserInput(
            f"one request returns at most {self.limit} bytes of output: ask for fewer executions (a smaller "
            "`first`), or stream the output with executionEvents",
            reason="OUTPUT_BUDGET",
        )


def current() -> OperationOutput:
    """The output budget of the operation being executed."""
    budget = _current.get()
    if budget is None:
        raise RuntimeError("no output budget: the OutputBudget extension is not installed")
    return budget


class OutputBudget(SchemaExtension):
    """Gives every operation, and every event of a subscription, a fresh output budget."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def on_operation(self) -> Iterator[None]:
        _current.set(OperationOutput(self.limit))
        yield

    def on_stream_result(self, result: object) -> Iterator[None]:
        yield
        _current.set(OperationOutput(self.limit))
