"""The arq worker process: jobs, heartbeat and watchdog, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from signal import Signals
from typing import Any

import structlog
from arq.worker import Worker, func
from redis.exceptions import RedisError

from podrun import tasks
from podrun.container import Container
from podrun.core.backoff import Backoff
from podrun.fair_queue import ANY_SIZE, FairQueue
from podrun.redis_client import Keys, redis_settings
from podrun.settings import Settings
from podrun.worker.context import WorkerProcess
from podrun.worker.gauges import sample_forever
from podrun.worker.jobs import run_execution, run_kernel
from podrun.worker.watchdog import beat, keep_watch

log = structlog.get_logger(__name__)

# arq re-delivers a job whose worker vanished only after this long past its wall limit;
# the watchdog ends such runs much sooner (see executions/orphans.py).
JOB_TIMEOUT_MARGIN_S = 60
OUTAGE_FIRST_DELAY_S = 0.2
OUTAGE_MAX_DELAY_S = 2.0
# Without a wake (one lost while Redis was away, say), the queue is still read this often.
FALLBACK_POLL_S = 1.0
WAKE_READ_TIMEOUT_S = 1.0


class PodrunWorker(Worker):
    """arq's worker, starting runs in a fair order, woken instead of polling, and riding out Redis outages.

    Jobs are not read from arq's queue in order of arrival: runs are claimed from the per-user queues
    (fair_queue.py) while the memory limits of this worker's runs leave room for the next one and fewer
    than `max_jobs` run; their arq jobs then start as usual.

    arq reads the queue every `poll_delay`, which puts up to that long between a submission and its
    start. Here the queue is read again as soon as an enqueuer publishes on the wake channel or a
    job ends and frees a slot, and otherwise every FALLBACK_POLL_S. A poll that fails is tried again
    after a pause instead of ending the process, and jobs already running go on (their runs do not
    need Redis to progress).
    """

    def __init__(self, *, wake_channel: str, keys: Keys, memory_budget_mib: int, **kwargs: Any) -> None:
        super().__init__(poll_delay=0, **kwargs)
        self.wake_channel = wake_channel
        self.wake = asyncio.Event()
        self.listener: asyncio.Task[None] | None = None
        self.outage = Backoff(OUTAGE_FIRST_DELAY_S, OUTAGE_MAX_DELAY_S)
        self.keys = keys
        self.memory_budget_mib = memory_budget_mib
        # The memory limit of each run this worker claimed, by job id, while its job runs.
        self.claimed_mib: dict[str, int] = {}

    async def _poll_iteration(self) -> None:
        try:
            await self._start_claimed_runs()
            self._forget_ended_jobs()
            await self.heart_beat()
        except (RedisError, OSError) as exc:
            log.warning("job queue unavailable; retrying", error=type(exc).__name__, in_s=self.outage.delay_s)
            await self._recount_slots()
            await self.outage.sleep()
            return
        self.outage.reset()
        await self._wait_for_work()

    async def _start_claimed_runs(self) -> None:
        """Claim runs fairly (fair_queue.py) and start their jobs while this worker has room for them."""
        queue = FairQueue(self.pool, self.keys)
        while self.allow_pick_jobs and self.job_counter < self.max_jobs:
            # A run leaves the count when its job ends, or at once if arq did not start it (another worker had).
            self.claimed_mib = {job_id: mib for job_id, mib in self.claimed_mib.items() if _running(self.tasks, job_id)}
            used = sum(self.claimed_mib.values())
            # A worker running nothing takes any run, even one larger than its budget (which then leaves no room).
            claimed = await queue.claim(max(self.memory_budget_mib - used, 0) if self.claimed_mib else ANY_SIZE)
            if claimed is None:
                return
            self.claimed_mib[claimed.job_id] = claimed.memory_mib
            await self.start_jobs([claimed.job_id.encode()])

    def _forget_ended_jobs(self) -> None:
        # As arq's own poll does (which this worker's replaces: it reads arq's queue in order of arrival).
        for job_id, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[job_id]
                task.result()  # a failure of arq's job wrapper itself surfaces here

    async def _wait_for_work(self) -> None:
        if self.listener is None:
            self.listener = asyncio.create_task(self._listen(), name="queue-wake")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), FALLBACK_POLL_S)
        # Whatever was enqueued before this point is in the queue the next iteration reads.
        self.wake.clear()

    async def _listen(self) -> None:
        """Set `wake` for every message on the wake channel, resubscribing after a Redis outage."""
        while True:
            try:
                async with self.pool.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.wake_channel)
                    self.wake.set()  # what was published while we were not listening
                    while True:
                        if await pubsub.get_message(timeout=WAKE_READ_TIMEOUT_S) is not None:
                            self.wake.set()
            except (RedisError, OSError):
                await asyncio.sleep(OUTAGE_MAX_DELAY_S)

    def handle_sig_wait_for_completion(self, signum: Signals) -> None:
        """Stop taking jobs and let the running ones end, as arq does; kernels are told to end now, as they never
        end on their own (a running cell still finishes within the grace period)."""
        worker = self.ctx.get("podrun")
        if isinstance(worker, WorkerProcess) and "kernel_wakes" in worker.container.__dict__:
            worker.container.kernel_wakes.close_all()
        super().handle_sig_wait_for_completion(signum)

    def _release_sem_dec_counter_on_complete(self) -> None:
        super()._release_sem_dec_counter_on_complete()
        self.wake.set()  # a slot is free: a job waiting in the queue can start now

    async def close(self) -> None:
        """Stop listening for wakes, then close as arq does."""
        if self.listener is not None:
            await tasks.stop(self.listener)
        await super().close()

    async def _recount_slots(self) -> None:
        # arq counts a job (and takes a semaphore slot) before its Redis calls; a call that failed
        # leaves the count off. Running jobs' tasks release their slots on the new semaphore when they end.
        running = [task for task in self.tasks.values() if not task.done()]
        self.job_counter = len(running)
        self.sem = asyncio.BoundedSemaphore(self.max_jobs)
        for _ in running:
            await self.sem.acquire()


def _running(tasks: dict[str, asyncio.Task[Any]], job_id: str) -> bool:
    task = tasks.get(job_id)
    return task is not None and not task.done()


def memory_budget_mib(settings: Settings) -> int:
    """The memory one worker's runs may be given in all: the setting, or 3/4 of this host's memory."""
    if settings.worker.memory_mib is not None:
        return settings.worker.memory_mib
    host_mib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    return host_mib * 3 // 4


def create_worker(settings: Settings) -> Worker:
    """An arq worker for Podrun's queue."""
    keys = Keys(settings.redis_prefix)
    resources = contextlib.AsyncExitStack()

    async def startup(ctx: dict[str, Any]) -> None:
        container = await resources.enter_async_context(Container.running(settings, "worker"))
        worker = WorkerProcess(container=container, worker_id=uuid.uuid4().hex)
        await beat(worker)
        resources.push_async_callback(container.heartbeats.stop, worker.worker_id)
        ctx["podrun"] = worker
        await container.runner.open(worker.worker_id)
        resources.push_async_callback(container.runner.close)
        watchdog = asyncio.create_task(keep_watch(worker), name="watchdog")
        resources.push_async_callback(tasks.stop, watchdog)  # stops first: no beat after the heartbeat is gone
        resources.push_async_callback(tasks.stop, asyncio.create_task(sample_forever(arq_worker, keys), name="gauges"))
        log.info("worker started", worker_id=worker.worker_id, isolation=container.runner.isolation())

    async def shutdown(ctx: dict[str, Any]) -> None:
        await resources.aclose()
        log.info("worker stopped")

    budget = memory_budget_mib(settings)
    log.info("worker capacity", memory_budget_mib=budget, max_runs=settings.worker.concurrency)
    arq_worker = PodrunWorker(
        wake_channel=keys.queue_wake,
        keys=keys,
        memory_budget_mib=budget,
        functions=[
            func(run_execution, name="run_execution", max_tries=3),  # type: ignore[arg-type]
            # A kernel is held for its whole life; arq does not try it again (a lost worker's kernel is handed over
            # on a durable runner, over otherwise: kernels/orphans.py).
            func(run_kernel, name="run_kernel", max_tries=1, timeout=settings.kernels.max_lifetime_s),  # type: ignore[arg-type]
        ],
        redis_settings=redis_settings(settings),
        queue_name=keys.queue,
        health_check_key=keys.health,
        health_check_interval=10,
        max_jobs=settings.worker.concurrency,
        job_timeout=settings.limits.maximum.wall_time_ms // 1000 + JOB_TIMEOUT_MARGIN_S,
        job_completion_wait=settings.worker.shutdown_grace_s,
        keep_result=60,
        on_startup=startup,
        on_shutdown=shutdown,
    )
    return arq_worker
