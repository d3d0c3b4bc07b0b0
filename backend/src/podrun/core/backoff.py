"""Growing pauses between tries of something that fails while a service is away, reset once it works again."""

from __future__ import annotations

import asyncio


class Backoff:
    """A pause that doubles after each failed try, up to `max_s`, and starts again at `first_s` after a success.

    Every loop that waits out an outage (of Redis, PostgreSQL, a child process) keeps one of these instead of
    its own `delay = min(delay * 2, ...)` arithmetic.
    """

    def __init__(self, first_s: float, max_s: float) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self.delay_s = first_s

    def next(self) -> float:
        """The pause before the next try; the one after it is twice as long (up to `max_s`)."""
        delay = self.delay_s
        self.delay_s = min(delay * 2, self.max_s)
        return delay

    def reset(self) -> None:
        """A try worked: the next failure pauses `first_s` again."""
        self.delay_s = self.first_s

    async def sleep(self) -> None:
        """Pause for `next()` seconds."""
        await asyncio.sleep(self.next())
