"""The fair claim against real Redis: which run a worker with some room takes next."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import deserialize_job

from podrun.executions.queue import JOB_EXPIRES_MS, RunQueue
from podrun.fair_queue import ANY_SIZE, HELD_UNTIL, FairQueue, QueuedRun
from podrun.redis_client import Keys, create_redis
from podrun.settings import Settings
from tests.databases import delete_keys

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def queue() -> AsyncIterator[FairQueue]:
    settings = Settings()
    prefix = f"podrun-test-fair-{uuid.uuid4().hex[:8]}"
    redis = await create_redis(settings, "test")
    yield FairQueue(redis, Keys(prefix))
    await redis.aclose()
    delete_keys(settings.redis_url, prefix)


async def add(queue: FairQueue, owner: UUID, second: int, memory_mib: int = 256) -> str:
    """Queue a run of `owner` submitted `second` seconds after START, with its held arq job."""
    execution_id = uuid.uuid4()
    await queue.add(QueuedRun(execution_id, owner, memory_mib, START + timedelta(seconds=second)), b"job", 60_000)
    return str(execution_id)


async def claims(queue: FairQueue, count: int, room_mib: int = ANY_SIZE) -> list[str | None]:
    taken = [await queue.claim(room_mib) for _ in range(count)]
    return [claimed.job_id if claimed else None for claimed in taken]


async def test_the_user_with_fewest_runs_in_progress_goes_first_then_the_longest_waiting(queue: FairQueue) -> None:
    alice, bob, carol = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    a = [await add(queue, alice, second) for second in range(4)]
    b = await add(queue, bob, 10)
    c = await add(queue, carol, 11)
    assert await claims(queue, 7) == [a[0], b, c, a[1], a[2], a[3], None]


async def test_a_run_that_ended_frees_its_users_share(queue: FairQueue) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    a = [await add(queue, alice, second) for second in range(3)]
    b = [await add(queue, bob, 10 + second) for second in range(3)]
    assert await claims(queue, 2) == [a[0], b[0]]
    await queue.release(alice, UUID(a[0]))
    # Alice has none in progress now: her next run goes first; then, as many each, the longest waiting.
    assert await claims(queue, 4) == [a[1], a[2], b[1], b[2]]


async def test_a_claimed_job_is_due_now_and_a_run_cancelled_in_the_queue_leaves_no_job(queue: FairQueue) -> None:
    alice = uuid.uuid4()
    first, second = await add(queue, alice, 0), await add(queue, alice, 1)
    await queue.release(alice, UUID(second))
    assert await claims(queue, 2) == [first, None]
    assert (await queue.redis.zscore(queue.keys.queue, first) or 0) < HELD_UNTIL.timestamp() * 1000
    assert await queue.redis.zscore(queue.keys.queue, second) is None


async def test_only_runs_that_fit_the_room_left_are_taken(queue: FairQueue) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    large = await add(queue, alice, 0, memory_mib=1024)
    small = await add(queue, bob, 1, memory_mib=128)
    assert await claims(queue, 2, room_mib=512) == [small, None]
    # A worker running nothing takes any run, however large.
    claimed = await queue.claim(ANY_SIZE)
    assert claimed is not None
    assert (claimed.job_id, claimed.memory_mib) == (large, 1024)


async def test_a_hand_over_goes_before_every_queued_run_and_a_run_whose_job_is_gone_is_skipped(
    queue: FairQueue,
) -> None:
    alice = uuid.uuid4()
    lost, kept = await add(queue, alice, 0), await add(queue, alice, 1)
    await queue.redis.zrem(queue.keys.queue, lost)
    handover = f"{uuid.uuid4()}:reattach:dead-worker"
    await queue.redis.zadd(queue.keys.queue, {handover: 1})
    await queue.hand_over(handover)
    assert await claims(queue, 3, room_mib=0) == [handover, None, None]
    assert await claims(queue, 2) == [kept, None]


async def test_a_run_is_enqueued_as_arq_would_and_a_second_enqueue_of_it_is_ignored(queue: FairQueue) -> None:
    runs = RunQueue(queue.redis, queue.keys)  # type: ignore[arg-type]
    alice = uuid.uuid4()
    ours, arqs, ended = (QueuedRun(uuid.uuid4(), alice, 256, START) for _ in range(3))
    await runs.enqueue(ours)
    await runs.redis.enqueue_job(
        "run_execution",
        str(arqs.execution_id),
        trace={},
        _job_id=str(arqs.execution_id),
        _queue_name=queue.keys.queue,
        _defer_until=HELD_UNTIL,
        _expires=JOB_EXPIRES_MS / 1000,
    )
    stored = {run: await queue.redis.get(job_key_prefix + str(run.execution_id)) for run in (ours, arqs)}
    jobs = [deserialize_job(stored[run]) for run in (ours, arqs)]
    assert [(job.function, job.args, job.kwargs, job.job_try) for job in jobs] == [
        ("run_execution", (str(run.execution_id),), {"trace": {}}, None) for run in (ours, arqs)
    ]
    for run in (ours, arqs):
        member = str(run.execution_id)
        assert await queue.redis.zscore(queue.keys.queue, member) == HELD_UNTIL.timestamp() * 1000
        assert JOB_EXPIRES_MS - 60_000 < await queue.redis.pttl(job_key_prefix + member) <= JOB_EXPIRES_MS

    await queue.redis.zadd(queue.keys.queue, {str(ours.execution_id): 1})
    await runs.enqueue(ours)
    assert await queue.redis.get(job_key_prefix + str(ours.execution_id)) == stored[ours]
    assert await queue.redis.zscore(queue.keys.queue, str(ours.execution_id)) == 1
    # A job that ran and left its result is not enqueued again.
    await queue.redis.set(result_key_prefix + str(ended.execution_id), b"result")
    await runs.enqueue(ended)
    assert await queue.redis.exists(job_key_prefix + str(ended.execution_id)) == 0
    assert await claims(queue, 2) == [str(ours.execution_id), None]
