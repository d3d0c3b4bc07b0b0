"""The arq worker process: jobs, heartbeat and watchdog, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import structlog
from arq.worker import Worker, func

from podrun.db.base import database_config
from podrun.redis_client import Keys, create_redis, redis_settings
from podrun.runners import build_runner
from podrun.settings import Settings
from podrun.worker.jobs import WorkerContext, run_execution
from podrun.worker.watchdog import beat, keep_watch

log = structlog.get_logger(__name__)

# arq re-delivers a job whose worker vanished only after this long past its wall limit;
# the watchdog ends such runs much sooner (see watchdog.py).
JOB_TIMEOUT_MARGIN_S = 60


def create_worker(settings: Settings) -> Worker:
    """An arq worker for Podrun's queue."""
    keys = Keys(settings.redis_prefix)

    async def startup(ctx: dict[str, Any]) -> None:
        worker = WorkerContext(
            settings=settings,
            db=database_config(settings),
            redis=await create_redis(settings, "worker"),
            runner=build_runner(settings),
            worker_id=uuid.uuid4().hex,
        )
        await beat(worker)
        ctx["podrun"] = worker
        ctx["podrun_watch"] = asyncio.create_task(keep_watch(worker), name="watchdog")
        log.info("worker started", worker_id=worker.worker_id, isolation=worker.runner.isolation())

    async def shutdown(ctx: dict[str, Any]) -> None:
        watch: asyncio.Task[None] | None = ctx.get("podrun_watch")
        if watch is not None:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        worker: WorkerContext | None = ctx.get("podrun")
        if worker is not None:
            await worker.redis.delete(worker.keys.worker(worker.worker_id))
            await worker.redis.aclose()
            if worker.db.engine_instance is not None:
                await worker.db.engine_instance.dispose()
        log.info("worker stopped")

    return Worker(
        functions=[func(run_execution, name="run_execution", max_tries=3)],
        redis_settings=redis_settings(settings),
        queue_name=keys.queue,
        health_check_key=keys.health,
        health_check_interval=10,
        max_jobs=settings.worker_concurrency,
        job_timeout=settings.max_wall_time_ms // 1000 + JOB_TIMEOUT_MARGIN_S,
        job_completion_wait=settings.shutdown_grace_s,
        keep_result=60,
        poll_delay=0.1,
        on_startup=startup,
        on_shutdown=shutdown,
    )
