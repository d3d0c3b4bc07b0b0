"""The control stream of one run: commands for the worker holding it (stdin data, EOF, cancel), in order.

Input is accepted only within a window: the bytes accepted and not yet delivered into the sandbox stay
under a cap. The API adds input and counts it in one Lua script, so a refusal changes nothing and two
API processes cannot both take the last room; the worker counts what it delivered (`delivered`). The
sandbox's harness holds a bounded amount as well and stops reading the worker's frames past it, so
input a script never reads waits in this stream, within the cap, instead of growing anywhere.
"""

from __future__ import annotations

from uuid import UUID

from redis.asyncio import Redis

from podrun.redis_client import Keys

# Commands and the input window live as long as any run may wait and run, and then go.
CONTROL_TTL_S = 24 * 3600

_ADD_INPUT = """
local accepted = tonumber(redis.call('HGET', KEYS[2], 'accepted') or '0')
local delivered = tonumber(redis.call('HGET', KEYS[2], 'delivered') or '0')
local size, cap = tonumber(ARGV[2]), tonumber(ARGV[3])
if math.max(accepted - delivered, 0) + size > cap then return 0 end
redis.call('XADD', KEYS[1], '*', 'op', 'input', 'data', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('HINCRBY', KEYS[2], 'accepted', size)
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""


class ControlStream:
    """Commands for the worker holding one run."""

    def __init__(self, redis: Redis, keys: Keys, execution_id: UUID) -> None:
        self.redis = redis
        self.key = keys.control(execution_id)
        self.window_key = keys.input_window(execution_id)

    async def send(self, message: dict[str, str]) -> None:
        """Append a command (cancel, EOF)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.key, message)  # type: ignore[arg-type]
            pipe.expire(self.key, CONTROL_TTL_S)
            await pipe.execute()

    async def add_input(self, data: str, cap_bytes: int) -> bool:
        """Append stdin data if what waits undelivered stays within `cap_bytes` with it; whether it was added."""
        added = await self.redis.eval(  # type: ignore[misc]
            _ADD_INPUT,
            2,
            self.key,
            self.window_key,
            data,
            str(len(data.encode())),
            str(cap_bytes),
            str(CONTROL_TTL_S),
        )
        return bool(added)

    async def delivered(self, size: int) -> None:
        """The worker put `size` more bytes of input into the sandbox: they no longer count against the cap."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(self.window_key, "delivered", size)
            pipe.expire(self.window_key, CONTROL_TTL_S)
            await pipe.execute()
