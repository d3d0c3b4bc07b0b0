"""Each status change of a run loaded once, however many subscribers watch it.

A StatusChange carries the execution as it stands. With a thousand watchers on one run, loading it
per watcher would be a thousand identical queries per status change; instead the first watcher to
reach a change starts the load and every other one awaits the same result.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar
from uuid import UUID

T = TypeVar("T")

# Status changes remembered; a run has a handful, so this covers thousands of runs watched at once.
KEEP = 4096


class StatusSnapshots(Generic[T]):
    """Loads keyed by (execution id, seq of the status change), shared while they are remembered."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self.loads: OrderedDict[tuple[UUID, int], asyncio.Future[T]] = OrderedDict()

    async def get(self, execution_id: UUID, seq: int, load: Callable[[], Awaitable[T]]) -> T:
        """The snapshot for this change, loading it if no other subscriber has."""
        key = (execution_id, seq)
        future = self.loads.get(key)
        if future is None:
            future = asyncio.ensure_future(load())
            future.add_done_callback(lambda done: self._forget_failed(key, done))
            self.loads[key] = future
            while len(self.loads) > self.keep:
                self.loads.popitem(last=False)
        # One subscriber going away must not cancel the load the others wait for.
        return await asyncio.shield(future)

    def _forget_failed(self, key: tuple[UUID, int], future: asyncio.Future[T]) -> None:
        # A failed load (the database was away) is tried again by the next subscriber.
        if future.cancelled() or future.exception() is not None:
            self.loads.pop(key, None)
