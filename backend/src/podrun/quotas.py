"""Submission quotas, taken atomically in Redis: submissions per minute, runs in progress, runs queued.

One Lua script checks all three and, only if all allow it, takes a slot in each, so parallel
submissions (from any number of API processes) can never both take the last slot. A run holds its
slots in two sorted sets, execution id -> when the entry lapses: the user's runs in progress (left
when the run ends) and everyone's queued runs (left when a worker claims it). The lapse is a
backstop for a release that was lost with Redis; Redis itself being lost frees every slot (PostgreSQL
stays the record of the runs, Redis only counts them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import IntEnum

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from podrun.core.errors import RateLimited
from podrun.redis_client import Keys

RATE_WINDOW_MS = 60_000
# Longer than any run stays queued or in progress; only a slot whose release was lost lasts this long.
SLOT_LAPSE_MS = 3600 * 1000
FULL_RETRY_MS = 1000

_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local submitted = tonumber(redis.call('GET', KEYS[1]) or '0')
if submitted >= tonumber(ARGV[2]) then return {1, redis.call('PTTL', KEYS[1])} end
local active = redis.call('ZCARD', KEYS[2])
if active >= tonumber(ARGV[4]) then return {2, active} end
local queued = redis.call('ZCARD', KEYS[3])
if queued >= tonumber(ARGV[5]) then return {3, queued} end
redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
local lapse = now + tonumber(ARGV[6])
redis.call('ZADD', KEYS[2], lapse, ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('ZADD', KEYS[3], lapse, ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[6])
return {0, 0}
"""

# Not below zero: the minute may have turned meanwhile (the count then started again without this submission).
_GIVE_BACK = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
"""


class Refusal(IntEnum):
    """Which quota refused a submission (the Lua script's first answer)."""

    NONE = 0
    RATE = 1
    ACTIVE = 2
    QUEUE = 3


@dataclass(frozen=True, slots=True)
class SubmitQuota:
    """The quotas one submission is checked against."""

    submissions_per_minute: int
    active_executions: int
    queued_executions_cap: int


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """How much of each quota a user holds now."""

    active_executions: int
    submissions_this_minute: int
    submissions_reset_in_ms: int
    queued_executions: int


class SubmitQuotas:
    """The quota slots of submissions, in one Redis."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def take(self, user_id: str, execution_id: str, quota: SubmitQuota) -> Refusal:
        """Take a slot of every quota for this run, or none; which quota refused, if one did."""
        refusal, _ = await self.redis.eval(  # type: ignore[misc]
            _TAKE,
            3,
            self.keys.rate("submit", user_id),
            self.keys.active_runs(user_id),
            self.keys.queued_runs,
            execution_id,
            str(quota.submissions_per_minute),
            str(RATE_WINDOW_MS),
            str(quota.active_executions),
            str(quota.queued_executions_cap),
            str(SLOT_LAPSE_MS),
        )
        return Refusal(int(refusal))

    async def take_or_refuse(self, user_id: str, execution_id: str, quota: SubmitQuota) -> Refusal:
        """`take`, raising RATE_LIMITED for a refusal of the rate or the queue cap (ACTIVE is returned)."""
        refusal = await self.take(user_id, execution_id, quota)
        if refusal is Refusal.RATE:
            reset_ms = max(int(await self.redis.pttl(self.keys.rate("submit", user_id))), 1)
            raise RateLimited(f"too many submissions; try again in {reset_ms // 1000 + 1} s", retry_after_ms=reset_ms)
        if refusal is Refusal.QUEUE:
            raise RateLimited("the queue is full; try again shortly", retry_after_ms=FULL_RETRY_MS)
        return refusal

    async def give_back(self, user_id: str, execution_id: str) -> None:
        """A submission that took its slots was refused after all (its storage is full): as if never made, the
        submission it counted this minute included."""
        await self.redis.eval(  # type: ignore[misc]
            _GIVE_BACK,
            3,
            self.keys.rate("submit", user_id),
            self.keys.active_runs(user_id),
            self.keys.queued_runs,
            execution_id,
        )

    async def release(self, user_id: str, execution_id: str) -> None:
        """The run ended (or was never stored): give back its slots."""
        async with self.redis.pipeline(transaction=True) as pipe:
            self.release_in(pipe, user_id, execution_id)
            await pipe.execute()

    def release_in(self, pipe: Pipeline, user_id: str, execution_id: str) -> None:
        """`release`, as commands of the caller's pipeline."""
        pipe.zrem(self.keys.active_runs(user_id), execution_id)
        pipe.zrem(self.keys.queued_runs, execution_id)

    async def renew(self, user_id: str, holder_id: str) -> None:
        """Keep the in-progress slot of a holder that lives longer than the lapse (a kernel) from lapsing; it is
        taken again if Redis lost it."""
        key = self.keys.active_runs(user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {holder_id: int(time.time() * 1000) + SLOT_LAPSE_MS})
            pipe.pexpire(key, SLOT_LAPSE_MS)
            await pipe.execute()

    async def left_queue(self, execution_id: str) -> None:
        """A worker claimed the run: it no longer counts against the queue cap."""
        await self.redis.zrem(self.keys.queued_runs, execution_id)

    async def held_active(self, user_id: str) -> list[str]:
        """The runs that hold a user's in-progress slots."""
        return [member.decode() for member in await self.redis.zrange(self.keys.active_runs(user_id), 0, -1)]

    async def forget(self, user_id: str, execution_ids: list[str]) -> None:
        """Drop slots whose run ended while their release was lost."""
        if execution_ids:
            await self.redis.zrem(self.keys.active_runs(user_id), *execution_ids)

    async def usage(self, user_id: str) -> QuotaUsage:
        """What the user holds now (for `myQuota`)."""
        now_ms = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcount(self.keys.active_runs(user_id), now_ms, "+inf")
            pipe.get(self.keys.rate("submit", user_id))
            pipe.pttl(self.keys.rate("submit", user_id))
            pipe.zcount(self.keys.queued_runs, now_ms, "+inf")
            active, submitted, reset_ms, queued = await pipe.execute()
        return QuotaUsage(
            active_executions=int(active),
            submissions_this_minute=int(submitted or 0),
            submissions_reset_in_ms=max(int(reset_ms), 0),
            queued_executions=int(queued),
        )
