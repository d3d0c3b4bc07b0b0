"""A run's places in Redis outside its logs: its arq job, its place in the fair queue and its quota slots.

The API enqueues a run after committing its row; the worker frees its queue slot when it claims the run,
hands a run over when its worker died, and every ending frees the rest.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import structlog
from arq.connections import ArqRedis
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from redis.exceptions import RedisError

from podrun.fair_queue import FairQueue, QueuedRun
from podrun.observability import tracing
from podrun.quotas import SubmitQuotas
from podrun.redis_client import Keys

log = structlog.get_logger(__name__)

# A held job outlives any wait in the queue; one lost with it is enqueued again by the sweep.
JOB_EXPIRES_MS = int(timedelta(days=1).total_seconds() * 1000)


class RunQueue:
    """The jobs, fair queue and quota slots of runs, in one Redis."""

    def __init__(self, redis: ArqRedis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.quotas = SubmitQuotas(redis, keys)
        self.fair = FairQueue(redis, keys)

    async def enqueue(self, run: QueuedRun, function: str = "run_execution") -> None:
        """Enqueue the job for a stored execution, held until a worker claims the run fairly (fair_queue.py).

        A kernel is queued the same way, as the job `run_kernel` with the kernel's id.

        A second enqueue of the same id leaves the first job as it is (as arq's own enqueue does); the run is queued
        for the claim again either way. The job carries the current trace context, so the worker's spans join the
        submission's trace.
        """
        execution_id = run.execution_id
        with tracing.tracer.start_as_current_span("enqueue", attributes={"podrun.execution_id": str(execution_id)}):
            # The job as arq's `enqueue_job(function, id, trace=..., _job_id=id, _defer_until=HELD_UNTIL,
            # _expires=a day)` writes it, but in the fair queue's one round trip instead of arq's three before it.
            job = serialize_job(
                function,
                (str(execution_id),),
                {"trace": tracing.carrier()},
                None,
                timestamp_ms(),
                serializer=self.redis.job_serializer,
            )
            await self.fair.add(run, job, JOB_EXPIRES_MS, wake=self.keys.queue_wake)

    async def hand_over(self, execution_id: UUID, dead_worker_id: str, function: str = "run_execution") -> bool:
        """Enqueue the job that re-attaches a live worker to a run whose worker died; False if one was already.

        One job per dead holder: every live worker's sweep may get here, arq keeps the first. A kernel is
        handed over the same way, as the job `run_kernel` with the kernel's id.
        """
        job_id = f"{execution_id}:reattach:{dead_worker_id}"
        job = await self.redis.enqueue_job(function, str(execution_id), dead_worker_id, _job_id=job_id)
        if job is None:
            return False
        await self.fair.hand_over(job_id)
        await self.wake_workers()
        return True

    async def wake_workers(self) -> None:
        """Tell idle workers a job is waiting (they poll as well: a wake that is lost only delays the pickup)."""
        await self.redis.publish(self.keys.queue_wake, "")

    async def left_queue(self, execution_id: UUID) -> None:
        """A worker claimed the run: free its slot of the queue cap (a lost release lapses or is reclaimed)."""
        try:
            await self.quotas.left_queue(str(execution_id))
        except RedisError as exc:
            log.warning("queue slot not released", execution_id=str(execution_id), error=type(exc).__name__)

    async def release(self, owner_id: UUID, execution_id: UUID) -> None:
        """The run ended: free its quota slots and its place in the fair queue (one round trip)."""
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                self.quotas.release_in(pipe, str(owner_id), str(execution_id))
                self.fair.release_in(pipe, owner_id, execution_id)
                await pipe.execute()
        except RedisError as exc:
            # The next refusal of this user's submissions finds the ended run and frees its slot.
            log.warning("quota slots not released", execution_id=str(execution_id), error=type(exc).__name__)
