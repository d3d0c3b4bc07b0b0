"""The arq job that carries one execution from QUEUED to its end.

QUEUED -> STARTING (claimed by this worker) -> RUNNING (sandbox up) -> terminal. Each change is
committed to PostgreSQL and then appended to the execution's event log. Output bytes become lines
(streams/lines.py) and go to the log as they come; stdin and cancel arrive on the control stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

import structlog
from advanced_alchemy.config import SQLAlchemyAsyncConfig
from arq.connections import ArqRedis

from podrun.executions.models import Execution, ExecutionStatus
from podrun.executions.service import ExecutionService, Outcome
from podrun.redis_client import Keys
from podrun.runners.base import LimitKind, OutputBytes, Runner, Sandbox, SandboxResult, SandboxSpec, sandbox_name
from podrun.settings import Settings
from podrun.streams.lines import LineAssembler
from podrun.streams.log import EventLog, LogWriter

log = structlog.get_logger(__name__)

CONTROL_BLOCK_MS = 250
LOST_WORKER_ERROR = "the worker running this execution stopped unexpectedly"
SHUTDOWN_ERROR = "the worker shut down before the run finished"
PLATFORM_ERROR = "the sandbox failed; please try again"


@dataclass
class WorkerContext:
    """What every job of this worker process shares."""

    settings: Settings
    db: SQLAlchemyAsyncConfig
    redis: ArqRedis
    runner: Runner
    worker_id: str

    @property
    def keys(self) -> Keys:
        """Redis key names."""
        return Keys(self.settings.redis_prefix)


async def run_execution(ctx: dict[str, Any], execution_id: str) -> str:
    """arq entry point: run one execution to its end; returns the final status."""
    worker: WorkerContext = ctx["podrun"]
    key = UUID(execution_id)
    async with ExecutionService.new(config=worker.db) as service:
        execution = await service.claim(key, worker.worker_id)
        if execution is None:
            return await _not_claimable(worker, service, key)
        writer = await LogWriter.resume(EventLog(worker.redis, worker.keys, key))
        await writer.status(writer.status_event(ExecutionStatus.STARTING))
        log.info("execution starting", execution_id=execution_id, attempt=execution.attempts)
        try:
            outcome = await _run(worker, service, execution, writer)
        except asyncio.CancelledError:
            shutdown = Outcome(ExecutionStatus.ERROR, error=SHUTDOWN_ERROR)
            await asyncio.shield(service.finish(key, shutdown, writer, worker.settings))
            raise
        except Exception:
            log.exception("execution failed in the platform", execution_id=execution_id)
            outcome = Outcome(ExecutionStatus.ERROR, error=PLATFORM_ERROR)
        await service.finish(key, outcome, writer, worker.settings)
        return outcome.status.value


async def _not_claimable(worker: WorkerContext, service: ExecutionService, key: UUID) -> str:
    """A job for a run this worker cannot claim: cancelled in the queue, finished, or orphaned by a crash."""
    execution = await service.get_one_or_none(id=key)
    if execution is None:
        return "MISSING"
    # arq re-delivers a job whose worker died; the sandbox died with that worker.
    orphaned = execution.status in (ExecutionStatus.STARTING, ExecutionStatus.RUNNING)
    if orphaned and not await worker_alive(worker.redis, worker.keys, execution.worker_id):
        await end_orphan(worker, service, execution)
    return execution.status.value


async def worker_alive(redis: ArqRedis, keys: Keys, worker_id: str | None) -> bool:
    """Whether the worker with this id still refreshes its heartbeat."""
    return worker_id is not None and bool(await redis.exists(keys.worker(worker_id)))


async def end_orphan(worker: WorkerContext, service: ExecutionService, execution: Execution) -> None:
    """End a run whose worker is gone as ERROR and remove what its sandbox left on this host."""
    await worker.runner.cleanup(sandbox_name(execution.id))
    writer = await LogWriter.resume(EventLog(worker.redis, worker.keys, execution.id))
    lost = Outcome(ExecutionStatus.ERROR, error=LOST_WORKER_ERROR)
    if await service.finish(execution.id, lost, writer, worker.settings):
        log.warning("orphaned execution ended", execution_id=str(execution.id), worker_id=execution.worker_id)


async def _run(worker: WorkerContext, service: ExecutionService, execution: Execution, writer: LogWriter) -> Outcome:
    spec = SandboxSpec(
        name=sandbox_name(execution.id),
        runtime_id=execution.runtime,
        script=execution.script,
        stdin=execution.stdin.encode() if execution.stdin is not None else None,
        limits=execution.limits,
    )
    sandbox = await worker.runner.start(spec)
    try:
        if not execution.stdin_open:
            await sandbox.close_stdin()  # stdin given at submission: the script reads it, then EOF
        if await service.mark_running(execution.id) is None:
            await sandbox.kill()
            await sandbox.wait()
            return Outcome(ExecutionStatus.CANCELLED)
        await writer.status(writer.status_event(ExecutionStatus.RUNNING))
        session = _RunSession(worker, execution, sandbox, writer)
        return await session.run()
    except BaseException:
        await sandbox.kill()
        with contextlib.suppress(Exception):
            await asyncio.shield(sandbox.wait())
        raise


class _RunSession:
    """Pumps one sandbox's output into the log and control commands into the sandbox."""

    def __init__(self, worker: WorkerContext, execution: Execution, sandbox: Sandbox, writer: LogWriter) -> None:
        self.worker = worker
        self.execution = execution
        self.sandbox = sandbox
        self.writer = writer
        self.lines = LineAssembler(execution.output_bytes)
        self.cancelled = False

    async def run(self) -> Outcome:
        control = asyncio.create_task(self._follow_control(), name="control")
        try:
            await self._pump_output()
            result = await self.sandbox.wait()
        finally:
            control.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await control
        return self._classify(result)

    async def _pump_output(self) -> None:
        chunks: asyncio.Queue[OutputBytes | None] = asyncio.Queue(maxsize=64)

        async def read() -> None:
            try:
                async for chunk in self.sandbox.output():
                    await chunks.put(chunk)
            finally:
                await chunks.put(None)

        reader = asyncio.create_task(read(), name="output")
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(chunks.get(), self.lines.due_in())
                except TimeoutError:
                    await self.writer.lines(self.lines.flush_due())
                    continue
                if chunk is None:
                    break
                batch = self.lines.feed(chunk.stream, chunk.data)
                while not chunks.empty() and len(batch) < 1000:  # batch whatever else already arrived
                    queued = chunks.get_nowait()
                    if queued is None:
                        await chunks.put(None)
                        break
                    batch.extend(self.lines.feed(queued.stream, queued.data))
                await self.writer.lines(batch)
                if self.lines.truncated:
                    await self.sandbox.kill()
            await self.writer.lines(self.lines.flush_all())
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _follow_control(self) -> None:
        key = self.worker.keys.control(self.execution.id)
        cursor = "0-0"
        stdin_open = self.execution.stdin_open
        while True:
            response = await self.worker.redis.xread({key: cursor}, block=CONTROL_BLOCK_MS)
            for _, entries in response or []:
                for entry_id, fields in entries:
                    cursor = entry_id.decode()
                    op = fields.get(b"op")
                    if op == b"cancel":
                        self.cancelled = True
                        await self.sandbox.kill()
                        log.info("execution cancelled", execution_id=str(self.execution.id))
                    elif op == b"input" and stdin_open:
                        await self.sandbox.write_stdin(fields.get(b"data", b""))
                    elif op == b"eof" and stdin_open:
                        stdin_open = False
                        await self.sandbox.close_stdin()

    def _classify(self, result: SandboxResult) -> Outcome:
        ended = Outcome(
            ExecutionStatus.FAILED,
            exit_code=result.exit_code,
            signal=result.signal,
            limit_exceeded=result.limit_exceeded,
            usage=result.usage,
            output_truncated=self.lines.truncated,
        )
        if self.cancelled:
            return replace(ended, status=ExecutionStatus.CANCELLED, limit_exceeded=None)
        if self.lines.truncated:
            return replace(ended, limit_exceeded=LimitKind.OUTPUT)
        if result.error is not None:
            return replace(ended, status=ExecutionStatus.ERROR, error=result.error, limit_exceeded=None)
        if result.limit_exceeded in (LimitKind.WALL_TIME, LimitKind.CPU_TIME):
            return replace(ended, status=ExecutionStatus.TIMED_OUT)
        if result.limit_exceeded is None and result.exit_code == 0 and result.signal is None:
            return replace(ended, status=ExecutionStatus.SUCCEEDED)
        return ended
