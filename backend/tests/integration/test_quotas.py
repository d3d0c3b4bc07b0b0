"""The in-progress slot of a long-lived holder (a kernel) against real Redis: renewed, it neither lapses nor is lost."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest

from podrun.quotas import SLOT_LAPSE_MS, Refusal, SubmitQuota, SubmitQuotas
from podrun.redis_client import Keys, create_redis
from podrun.settings import Settings
from tests.databases import delete_keys

QUOTA = SubmitQuota(submissions_per_minute=100, active_executions=1, queued_executions_cap=100)


@pytest.fixture
async def quotas() -> AsyncIterator[SubmitQuotas]:
    settings = Settings()
    prefix = f"podrun-test-quotas-{uuid.uuid4().hex[:8]}"
    redis = await create_redis(settings, "test")
    yield SubmitQuotas(redis, Keys(prefix))
    await redis.aclose()
    delete_keys(settings.redis_url, prefix)


async def test_a_renewed_slot_lapses_later_and_comes_back_when_lost(quotas: SubmitQuotas) -> None:
    key = quotas.keys.active_runs("alice")
    assert await quotas.take("alice", "kernel-1", QUOTA) is Refusal.NONE
    taken = await quotas.redis.zscore(key, "kernel-1")
    await quotas.redis.zadd(key, {"kernel-1": int(time.time() * 1000) + 1000})  # as if taken an hour ago
    await quotas.renew("alice", "kernel-1")
    renewed = await quotas.redis.zscore(key, "kernel-1")
    assert renewed is not None
    assert taken is not None
    assert renewed >= taken
    assert renewed >= time.time() * 1000 + SLOT_LAPSE_MS - 5000
    await quotas.redis.delete(key)  # Redis lost it
    await quotas.renew("alice", "kernel-1")
    assert await quotas.take("alice", "run-2", QUOTA) is Refusal.ACTIVE


async def test_a_submission_given_back_leaves_no_trace_in_any_quota(quotas: SubmitQuotas) -> None:
    one_a_minute = SubmitQuota(submissions_per_minute=1, active_executions=1, queued_executions_cap=100)
    assert await quotas.take("bob", "run-1", one_a_minute) is Refusal.NONE
    await quotas.give_back("bob", "run-1")
    assert await quotas.take("bob", "run-2", one_a_minute) is Refusal.NONE  # neither the rate nor the slot held
    assert await quotas.take("bob", "run-3", one_a_minute) is Refusal.RATE
    await quotas.redis.delete(quotas.keys.rate("submit", "bob"))  # the minute turned
    await quotas.give_back("bob", "run-2")
    assert await quotas.redis.get(quotas.keys.rate("submit", "bob")) is None  # never below zero
