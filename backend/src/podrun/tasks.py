"""Stopping background tasks for certain.

On Python 3.11 a cancellation can be lost: `asyncio.timeout` turns a cancel that was requested just
before the block began into its own TimeoutError (fixed in 3.12), and redis-py's connection checks
run inside such blocks. A task that loops over Redis calls and treats errors as transient then goes
on as if never cancelled, and `task.cancel(); await task` waits forever. `stop` asks again until
the task has ended; waiting through `asyncio.wait` also never swallows a cancellation of the caller.
"""

from __future__ import annotations

import asyncio
from typing import Any

# How long a task gets to end after one cancel before it is asked again. Short: a lost cancel is common (a
# run's control reader is in a blocking XREAD when its run ends), and the wait sat between a run's last line and
# its terminal status — at 0.5 s it was the bench's unexplained terminal tail.
PATIENCE_S = 0.05


async def stop(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and return once it has ended (whatever it ended with)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=PATIENCE_S)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved
