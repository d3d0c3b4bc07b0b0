"""Each worker's heartbeat, and the sweep that keeps runs from being stuck (policy: executions/orphans.py)."""

from __future__ import annotations

import asyncio
import time
from uuid import UUID

import structlog
from redis.exceptions import RedisError

from podrun.executions.orphans import recover_orphans, requeue_stale
from podrun.executions.retention import delete_expired
from podrun.kernels.orphans import recover_kernels, requeue_unclaimed
from podrun.observability.metrics import WORKER_HEARTBEATS
from podrun.runners.base import DurableRunner
from podrun.worker.context import WorkerProcess

log = structlog.get_logger(__name__)


async def beat(worker: WorkerProcess) -> None:
    """Refresh this worker's heartbeat."""
    container = worker.container
    await container.heartbeats.beat(worker.worker_id, container.settings.worker.heartbeat_ttl_s)
    WORKER_HEARTBEATS.inc()


async def sweep(worker: WorkerProcess, *, heartbeats_current: bool) -> None:
    """End (or hand over) runs whose worker is gone and re-enqueue QUEUED runs whose job may be lost.

    `heartbeats_current` is False until this worker has reached Redis for a whole heartbeat TTL: after
    Redis came back (empty), live workers need that long to beat again, and must not be taken for dead.
    """
    container = worker.container
    if heartbeats_current:
        await recover_orphans(container.lifecycle, container.runner, container.heartbeats)
        await recover_kernels(container.kernel_lifecycle, container.lifecycle, container.runner, container.heartbeats)
    await requeue_stale(container.lifecycle)
    await requeue_unclaimed(container.kernel_lifecycle, container.lifecycle)


async def reap(worker: WorkerProcess, runner: DurableRunner, *, heartbeats_current: bool) -> None:
    """Remove sandboxes whose execution (or kernel) is over or unknown, and warm ones of dead workers.

    The runner also removes long-overdue ones. Until heartbeats are current (see `sweep`), every worker
    counts as alive: a Redis that came back empty must not cost live workers their warm sandboxes.
    """
    heartbeats = worker.container.heartbeats

    async def in_progress(sandbox_id: UUID) -> bool:
        execution = await worker.container.lifecycle.load(sandbox_id)
        if execution is not None:
            return not execution.status.terminal
        kernel = await worker.container.kernel_lifecycle.load(sandbox_id)
        return kernel is not None and not kernel.status.ended

    async def alive(worker_id: str) -> bool:
        return not heartbeats_current or await heartbeats.alive(worker_id)

    await runner.reap(in_progress, alive)


async def expire(worker: WorkerProcess) -> None:
    """Delete the runs past their retention (policy: executions/retention.py)."""
    async with worker.container.executions() as executions:
        await delete_expired(executions, worker.container.policy, worker.container.settings.worker.retention_batch)


async def keep_watch(worker: WorkerProcess) -> None:
    """Beat and sweep (and reap, for durable runners, and delete expired runs now and then) until cancelled;
    a failing round is logged and retried."""
    settings = worker.container.settings
    runner = worker.container.runner
    next_reap = 0.0
    next_expiry = 0.0
    reached_redis_since: float | None = None
    while True:
        try:
            await beat(worker)
            reached_redis_since = reached_redis_since or time.monotonic()
        except (RedisError, OSError) as exc:
            reached_redis_since = None
            log.warning("heartbeat not sent: redis unavailable", error=type(exc).__name__)
        try:
            current = (
                reached_redis_since is not None
                and time.monotonic() - reached_redis_since >= settings.worker.heartbeat_ttl_s
            )
            await sweep(worker, heartbeats_current=current)
            if isinstance(runner, DurableRunner) and time.monotonic() >= next_reap:
                next_reap = time.monotonic() + settings.kubernetes.reap_interval_s
                await reap(worker, runner, heartbeats_current=current)
            if time.monotonic() >= next_expiry:
                next_expiry = time.monotonic() + settings.worker.retention_sweep_interval_s
                await expire(worker)
        except Exception:
            log.exception("watchdog round failed")
        await asyncio.sleep(min(settings.worker.heartbeat_interval_s, settings.worker.watchdog_interval_s))
