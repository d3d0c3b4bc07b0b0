"""One operation's output budget: fields within it are served, a field past it is refused before it is read,
and a live run's log is read once for all the fields of an operation."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest

from podrun.core.errors import BadUserInput
from podrun.core.output import Stream
from podrun.graphql.output_budget import LiveOutput, OperationOutput


def test_fields_within_the_budget_are_counted_and_one_past_it_is_refused_without_being_counted() -> None:
    budget = OperationOutput(100)
    budget.take(60)
    with pytest.raises(BadUserInput) as refused:
        budget.take(41)
    assert refused.value.extensions == {"code": "BAD_USER_INPUT", "reason": "OUTPUT_BUDGET"}
    assert "executionEvents" in refused.value.message
    budget.take(40)
    with pytest.raises(BadUserInput):
        budget.check()


async def test_a_live_runs_log_is_read_once_per_operation() -> None:
    budget = OperationOutput(100)
    reads = 0

    async def read() -> LiveOutput:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.01)
        return {Stream.STDOUT: "out", Stream.STDERR: "err"}

    execution_id = uuid4()
    first, second = await asyncio.gather(budget.live(execution_id, read), budget.live(execution_id, read))
    assert first == second == {Stream.STDOUT: "out", Stream.STDERR: "err"}
    assert reads == 1
    await budget.live(uuid4(), read)
    assert reads == 2
