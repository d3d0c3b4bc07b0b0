"""The control stream of one run: commands for the worker holding it (stdin data, EOF, cancel), in order.

Input is accepted only within a window: the bytes accepted and not yet delivered into the sandbox stay
under a cap. The API adds input and counts it in one Lua script, so a refusal changes nothing and two
API processes cannot both take the last room; the worker counts what it delivered (`delivered`). The
sandbox's harness holds a bounded amount as well and stops reading the worker's frames past it, so
input a script never reads waits in this stream, within the cap, instead of growing anywhere.

A command is one of three typed structs (`Input`, `Eof`, `Cancel`), one stream entry each, whose fields are
the struct's: `op` (its tag) and, for input, `data`. The API writes them here and the worker reads them here.
The worker ends the stream with `End` when the run's sandbox has ended: its readers, blocked in `XREAD`, wake and
stop, instead of being cancelled there (redis-py drops a connection whose reply a cancel interrupted, so each run
cost the pool a new connection).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from podrun.core.backoff import Backoff
from podrun.redis_client import Keys

log = structlog.get_logger(__name__)

# Commands and the input window live as long as any run may wait and run, and then go.
CONTROL_TTL_S = 24 * 3600
# How long one read waits for a command before the reader looks again (a stop is noticed within it).
READ_BLOCK_MS = 250
# Nobody writes to an ended run's stream: it goes soon after its end mark.
ENDED_TTL_S = 60
READ_RETRY_FIRST_S = 0.1
READ_RETRY_MAX_S = 2.0


class Input(msgspec.Struct, frozen=True, tag_field="op", tag="input"):
    """Stdin data for the script, in the order it was sent."""

    data: str


class Eof(msgspec.Struct, frozen=True, tag_field="op", tag="eof"):
    """The end of the script's stdin."""


class Cancel(msgspec.Struct, frozen=True, tag_field="op", tag="cancel"):
    """Stop the run now."""


class End(msgspec.Struct, frozen=True, tag_field="op", tag="end"):
    """The worker's mark that the run's sandbox has ended: the stream's readers stop."""


Command = Input | Eof | Cancel | End

# ARGV: the input's size, the cap, the TTL, then the fields of its entry (made by `to_fields`).
_ADD_INPUT = """
local accepted = tonumber(redis.call('HGET', KEYS[2], 'accepted') or '0')
local delivered = tonumber(redis.call('HGET', KEYS[2], 'delivered') or '0')
local size, cap = tonumber(ARGV[1]), tonumber(ARGV[2])
if math.max(accepted - delivered, 0) + size > cap then return 0 end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('HINCRBY', KEYS[2], 'accepted', size)
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""


def to_fields(command: Command) -> dict[str, str]:
    """The stream entry of a command."""
    fields: dict[str, str] = msgspec.to_builtins(command)
    return fields


def from_fields(fields: dict[bytes, bytes]) -> Command | None:
    """The command in a stream entry; None for an entry that is not one (it is skipped)."""
    try:
        command: Command = msgspec.convert({key.decode(): value.decode() for key, value in fields.items()}, Command)
    except (msgspec.ValidationError, UnicodeDecodeError):
        return None
    return command


class ControlStream:
    """Commands for the worker holding one run: written by the API, read in order by the worker."""

    def __init__(self, redis: Redis, keys: Keys, execution_id: UUID) -> None:
        self.redis = redis
        self.key = keys.control(execution_id)
        self.window_key = keys.input_window(execution_id)

    async def send(self, command: Eof | Cancel) -> None:
        """Append a command (input goes through `add_input`, which keeps it within the window)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.key, to_fields(command))  # type: ignore[arg-type]
            pipe.expire(self.key, CONTROL_TTL_S)
            await pipe.execute()

    async def end(self) -> None:
        """Mark the stream ended (the run's sandbox has): its readers wake and stop. It expires soon, if `drop`
        does not remove it first."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.key, to_fields(End()))  # type: ignore[arg-type]
            pipe.expire(self.key, ENDED_TTL_S)
            await pipe.execute()

    async def drop(self) -> None:
        """Remove the stream: the run has ended, and its readers have stopped (its input window expires)."""
        await self.redis.delete(self.key)

    async def add_input(self, data: str, cap_bytes: int) -> bool:
        """Append stdin data if what waits undelivered stays within `cap_bytes` with it; whether it was added."""
        added = await self.redis.eval(  # type: ignore[misc]
            _ADD_INPUT,
            2,
            self.key,
            self.window_key,
            str(len(data.encode())),
            str(cap_bytes),
            str(CONTROL_TTL_S),
            *(part for pair in to_fields(Input(data)).items() for part in pair),
        )
        return bool(added)

    async def delivered(self, size: int) -> None:
        """The worker put `size` more bytes of input into the sandbox: they no longer count against the cap."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(self.window_key, "delivered", size)
            pipe.expire(self.window_key, CONTROL_TTL_S)
            await pipe.execute()

    async def commands(self, count: int) -> AsyncIterator[Input | Eof | Cancel]:
        """Every command from the stream's start, in order, `count` read at a time, until its end mark.

        A Redis outage is waited out: cancel and input wait for Redis, the run itself goes on.
        """
        cursor = "0-0"
        backoff = Backoff(READ_RETRY_FIRST_S, READ_RETRY_MAX_S)
        while True:
            try:
                response = await self.redis.xread({self.key: cursor}, count=count, block=READ_BLOCK_MS)
            except RedisError:
                await backoff.sleep()
                continue
            backoff.reset()
            for _, entries in response or []:
                for entry_id, fields in entries:
                    cursor = entry_id.decode()
                    command = from_fields(fields)
                    if command is None:
                        log.warning("control entry skipped: not a command", key=self.key, entry_id=cursor)
                        continue
                    if isinstance(command, End):
                        return
                    yield command
