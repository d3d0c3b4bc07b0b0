"""`tasks.stop` ends a task even when its first cancellation is lost."""

from __future__ import annotations

import asyncio

import pytest

from podrun import tasks


async def test_a_task_that_swallows_a_cancel_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks, "PATIENCE_S", 0.01)
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # as a library losing the request would

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(tasks.stop(task), timeout=2)
    assert (task.cancelled(), swallowed) == (True, 1)


async def test_a_task_that_failed_or_finished_is_left_as_it_ended() -> None:
    async def fail() -> None:
        raise ValueError("boom")

    failed = asyncio.create_task(fail())
    await asyncio.sleep(0)
    await tasks.stop(failed)
    assert isinstance(failed.exception(), ValueError)
