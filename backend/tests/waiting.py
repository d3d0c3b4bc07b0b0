"""Waiting in a test for what a runner, pool or worker does in the background."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(
    condition: Callable[[], bool], timeout: float = 30.0, message: str = "condition not reached", every: float = 0.02
) -> None:
    """Return once `condition()` holds, asked every `every` seconds; fail with `message` after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, message
        await asyncio.sleep(every)
