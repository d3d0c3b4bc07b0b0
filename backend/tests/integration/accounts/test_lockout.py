"""The lockout's Lua scripts against the real Redis: the delay doubles per failure up to its maximum,
a locked client is refused, a forgiven attempt is taken back, and unlocking forgets everything."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis

from podrun.accounts.lockout import Lockout
from podrun.core.errors import RateLimited
from podrun.redis_client import Keys, create_redis
from podrun.settings import Settings, SignInSettings

SETTINGS = SignInSettings(failures_before_delay=2, first_delay_s=100, max_delay_s=300, failure_window_s=900)


@pytest.fixture
async def redis() -> AsyncIterator[ArqRedis]:
    client = await create_redis(Settings(), "test")
    yield client
    await client.aclose()


@pytest.fixture
def lockout(redis: ArqRedis) -> Lockout:
    return Lockout(redis, Keys(f"lockout-test-{uuid.uuid4().hex}"), SETTINGS)


async def lock_s(lockout: Lockout, email: str) -> float:
    """How long the account stays locked, in seconds (0: not locked)."""
    return max(await lockout.redis.pttl(lockout.keys.sign_in("lock", email)), 0) / 1000


async def test_each_failure_past_the_threshold_doubles_the_lock_up_to_its_maximum(lockout: Lockout) -> None:
    email = "someone@example.com"
    locks = []
    for index in range(6):
        # A fresh client each time: only clients that failed are refused while the account is locked.
        await lockout.attempt(email, f"192.0.2.{index}")
        locks.append(await lock_s(lockout, email))
    # Time passes between an attempt and the look at its lock, so a lock is at most its full length.
    expected = [0, 0, 100, 200, 300, 300]
    assert all(full / 2 < seen <= full for seen, full in zip(locks, expected, strict=True) if full), locks
    assert locks[:2] == [0, 0]


async def test_a_locked_client_is_refused_and_others_are_not(lockout: Lockout) -> None:
    email = "someone@example.com"
    for _ in range(3):
        await lockout.attempt(email, "192.0.2.1")
    with pytest.raises(RateLimited) as refused:
        await lockout.attempt(email, "192.0.2.1")
    assert 50_000 < refused.value.retry_after_ms <= 100_000
    await lockout.attempt(email, "192.0.2.2")
    await lockout.forgive(email, "192.0.2.2")
    # The owner's right password took back its count and its address: the next attempt is checked again.
    await lockout.attempt(email, "192.0.2.2")
    await lockout.unlock(email)
    await lockout.attempt(email, "192.0.2.1")
    assert await lock_s(lockout, email) == 0


async def test_forgiving_takes_back_exactly_one_attempt(lockout: Lockout) -> None:
    email = "someone@example.com"
    failures = lockout.keys.sign_in("failures", email)
    await lockout.attempt(email, "192.0.2.1")
    await lockout.attempt(email, "192.0.2.1")
    await lockout.forgive(email, "192.0.2.1")
    assert await lockout.redis.get(failures) == b"1"
    await lockout.forgive(email, "192.0.2.1")
    assert await lockout.redis.exists(failures) == 0
    assert await lockout.redis.exists(lockout.keys.sign_in("clients", email)) == 0
