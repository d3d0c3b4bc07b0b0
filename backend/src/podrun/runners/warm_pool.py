"""Warm sandboxes: a few per runtime started ahead of need, each handed to exactly one run.

A warm sandbox is up, its interpreter loaded, waiting for its header, so taking one costs a
lookup instead of a sandbox start. Nothing is ever reused: a sandbox serves one run and is
destroyed after it like any other, and a fresh one is started in its place, in the background and
a moment after the take, so the start does not compete with the run it serves. A runtime nobody
ran for `idle_s` has its warm sandboxes stopped; its next run starts cold and warms it again.

The pool holds `size` per runtime in use, more while runs arrive faster than a replacement starts: enough
for the recent arrival rate over the time a launch takes (measured), up to `max_size`, so back-to-back runs
keep finding one waiting. Replacements start side by side; the extra ones are stopped once demand falls.

The pool does not know what a sandbox is: a runner gives it a `launch` for one runtime and gets
back the sandboxes it launched. The local runner's are bubblewrap sandboxes; a Kubernetes runner's
would be pods waiting for their script.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import structlog

from podrun import tasks
from podrun.observability.metrics import WARM_POOL_SIZE

log = structlog.get_logger(__name__)

# How long after a take the replacement starts: long enough for a short run to have printed.
REFILL_DELAY_S = 0.1
# After a launch fails, the pool waits this long before trying again (a broken runtime must not spin).
RETRY_DELAY_S = 5.0
# The arrival rate is read from the takes of this window (at most RECENT_TAKES of them) ...
DEMAND_WINDOW_S = 30.0
RECENT_TAKES = 16
# ... and the pool holds what that rate takes while this many launches' time passes.
HEADROOM = 2.0
# The time a launch is assumed to take until one has been measured; later ones are averaged in by this weight.
FIRST_LAUNCH_S = 1.0
LAUNCH_WEIGHT = 0.3


class WarmSandbox(Protocol):
    """What the pool needs of a sandbox it keeps."""

    def waiting(self) -> bool:
        """Whether it is still up and waiting for a run."""

    async def discard(self) -> None:
        """Stop it and release what it holds."""


S = TypeVar("S", bound=WarmSandbox)


@dataclass
class _RuntimePool(Generic[S]):
    ready: deque[S] = field(default_factory=deque)
    starting: int = 0
    last_take: float = field(default_factory=time.monotonic)
    retry_at: float = 0.0
    takes: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_TAKES))
    launch_s: float = FIRST_LAUNCH_S

    def wanted(self, size: int, max_size: int) -> int:
        """How many to hold: `size`, or what the recent arrival rate takes while replacements start."""
        now = time.monotonic()
        while self.takes and self.takes[0] < now - DEMAND_WINDOW_S:
            self.takes.popleft()
        if len(self.takes) < 2:
            return size
        rate = (len(self.takes) - 1) / max(now - self.takes[0], 1e-3)
        return max(size, min(max_size, math.ceil(rate * self.launch_s * HEADROOM)))


class WarmPool(Generic[S]):
    """`size` waiting sandboxes per runtime that is in use, up to `max_size` while runs arrive quickly."""

    def __init__(
        self,
        size: int,
        idle_s: float,
        launch: Callable[[str], Awaitable[S | None]],
        *,
        max_size: int = 0,
        may_grow: Callable[[], bool] = lambda: True,
    ) -> None:
        self.size = size
        self.max_size = max(size, max_size)
        self.idle_s = idle_s
        self.launch = launch
        # Asked before every launch: False (the host is short of memory, say) leaves the pool as it is.
        self.may_grow = may_grow
        self.runtimes: dict[str, _RuntimePool[S]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.reaper: asyncio.Task[None] | None = None
        self.closed = False

    def take(self, runtime_id: str) -> S | None:
        """A waiting sandbox of the runtime, now the caller's, or None; either way the pool refills."""
        if self.size <= 0 or self.closed:
            return None
        pool = self.runtimes.setdefault(runtime_id, _RuntimePool())
        pool.last_take = time.monotonic()
        pool.takes.append(pool.last_take)
        taken: S | None = None
        while pool.ready and taken is None:
            candidate = pool.ready.popleft()
            if candidate.waiting():
                taken = candidate
            else:
                self._spawn(candidate.discard())
        self._report(runtime_id)
        self._schedule_fill(runtime_id, delay=REFILL_DELAY_S)
        return taken

    def warm(self, runtime_id: str) -> None:
        """Fill the runtime's pool now (at start-up, for the runtime most runs use)."""
        if self.size > 0 and not self.closed:
            self.runtimes.setdefault(runtime_id, _RuntimePool())
            self._schedule_fill(runtime_id, delay=0)

    def sizes(self) -> dict[str, int]:
        """Waiting sandboxes per runtime."""
        return {runtime_id: len(pool.ready) for runtime_id, pool in self.runtimes.items()}

    async def close(self) -> None:
        """Stop filling and stop every waiting sandbox."""
        self.closed = True
        for task in [*self.tasks, *([self.reaper] if self.reaper else [])]:
            await tasks.stop(task)
        for pool in self.runtimes.values():
            while pool.ready:
                await pool.ready.popleft().discard()
        for runtime_id in self.runtimes:
            self._report(runtime_id)

    def _report(self, runtime_id: str) -> None:
        WARM_POOL_SIZE.labels(runtime=runtime_id).set(len(self.runtimes[runtime_id].ready))

    def _schedule_fill(self, runtime_id: str, *, delay: float) -> None:
        if self.reaper is None:
            self.reaper = asyncio.create_task(self._stop_idle(), name="warm-pool-idle")
        self._spawn(self._fill(runtime_id, delay))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _fill(self, runtime_id: str, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        pool = self.runtimes[runtime_id]
        missing = pool.wanted(self.size, self.max_size) - len(pool.ready) - pool.starting
        if missing > 0 and not self.closed and time.monotonic() >= pool.retry_at:
            # Counted as starting at once, so a fill that runs meanwhile does not launch the same ones again.
            pool.starting += missing
            await asyncio.gather(*(self._launch_one(runtime_id, pool) for _ in range(missing)))

    async def _launch_one(self, runtime_id: str, pool: _RuntimePool[S]) -> None:
        began = time.monotonic()
        try:
            if not self.may_grow():
                return
            sandbox = await self.launch(runtime_id)
        finally:
            pool.starting -= 1
        if sandbox is None:
            pool.retry_at = time.monotonic() + RETRY_DELAY_S
            log.warning("warm sandbox not started", runtime=runtime_id, retry_in_s=RETRY_DELAY_S)
            return
        pool.launch_s += LAUNCH_WEIGHT * (time.monotonic() - began - pool.launch_s)
        if self.closed:
            await sandbox.discard()
            return
        pool.ready.append(sandbox)
        self._report(runtime_id)

    async def trim(self) -> None:
        """Stop what demand no longer needs: the extra sandboxes once runs slow down, all of an idle runtime's."""
        now = time.monotonic()
        for runtime_id, pool in self.runtimes.items():
            keep = 0 if now - pool.last_take >= self.idle_s else pool.wanted(self.size, self.max_size)
            if len(pool.ready) > keep:
                log.info("warm sandboxes stopped: demand fell", runtime=runtime_id, count=len(pool.ready) - keep)
                while len(pool.ready) > keep:
                    await pool.ready.pop().discard()
                self._report(runtime_id)

    async def _stop_idle(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, min(self.idle_s / 2, DEMAND_WINDOW_S / 2)))
            await self.trim()
