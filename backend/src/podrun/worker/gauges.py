"""The worker's gauges that are read rather than counted: its job slots and the depth of the queue.

The depth is the quota's set of runs waiting for a worker (quotas.py), which a run leaves when a worker claims
it; arq's own queue also holds the jobs being run.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from arq.worker import Worker
from redis.exceptions import RedisError

from podrun.observability.metrics import QUEUE_DEPTH, WORKER_SLOTS
from podrun.redis_client import Keys

log = structlog.get_logger(__name__)

SAMPLE_INTERVAL_S = 1.0


async def sample_forever(worker: Worker, keys: Keys) -> None:
    """Every SAMPLE_INTERVAL_S, set the slot gauges from arq's job count and the queue depth from Redis."""
    while True:
        busy = min(worker.job_counter, worker.max_jobs)
        WORKER_SLOTS.labels(state="busy").set(busy)
        WORKER_SLOTS.labels(state="free").set(worker.max_jobs - busy)
        try:
            # Entries lapse (their score, in ms) when a claim's release was lost.
            QUEUE_DEPTH.set(await worker.pool.zcount(keys.queued_runs, int(time.time() * 1000), "+inf"))
        except (RedisError, OSError) as exc:
            log.debug("queue depth not sampled", error=type(exc).__name__)
        await asyncio.sleep(SAMPLE_INTERVAL_S)
