"""The arq job that carries one execution from QUEUED to its end.

QUEUED -> STARTING (claimed by this worker) -> RUNNING (sandbox up) -> terminal. Each change is
committed to PostgreSQL and then appended to the execution's event log. Output bytes become lines
(streams/lines.py) and go to the log as they come; stdin and cancel arrive on the control stream.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

import structlog
from advanced_alchemy.config import SQLAlchemyAsyncConfig
from arq.connections import ArqRedis
from sqlalchemy import update

from podrun.executions.models import Execution, ExecutionStatus
from podrun.executions.service import ExecutionService, Outcome
from podrun.redis_client import Keys
from podrun.runners.base import (
    DurableRunner,
    LimitKind,
    OutputBytes,
    Runner,
    Sandbox,
    SandboxResult,
    SandboxSpec,
    Stream,
    sandbox_name,
)
from podrun.settings import Settings
from podrun.streams.events import Event, LineEvent
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


async def run_execution(ctx: dict[str, Any], execution_id: str, reattach_from: str | None = None) -> str:
    """arq entry point: run one execution to its end; returns the final status.

    With `reattach_from` (the id of a worker that died holding the run), take the run over and
    re-attach to its sandbox, which a durable runner keeps alive without its worker.
    """
    worker: WorkerContext = ctx["podrun"]
    key = UUID(execution_id)
    async with ExecutionService.new(config=worker.db) as service:
        if reattach_from is None:
            execution = await service.claim(key, worker.worker_id)
        else:
            execution = await _take_over(service, key, reattach_from, worker.worker_id)
        if execution is None:
            return await _not_claimable(worker, service, key)
        writer = await LogWriter.resume(EventLog(worker.redis, worker.keys, key))
        logged: list[Event] = []
        if reattach_from is None:
            await writer.status(writer.status_event(ExecutionStatus.STARTING))
        else:
            logged = await writer.log.read_all()
        log.info("execution starting", execution_id=execution_id, attempt=execution.attempts, reattach=bool(logged))
        try:
            outcome = await _run(worker, service, execution, writer, logged)
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
    # arq re-delivers a job whose worker died.
    orphaned = execution.status in (ExecutionStatus.STARTING, ExecutionStatus.RUNNING)
    if orphaned and not await worker_alive(worker.redis, worker.keys, execution.worker_id):
        await recover_orphan(worker, service, execution)
    return execution.status.value


async def _take_over(service: ExecutionService, key: UUID, dead_worker_id: str, worker_id: str) -> Execution | None:
    """Move a started run from a dead worker to this one; None if someone else did already (or it ended)."""
    statement = (
        update(Execution)
        .where(
            Execution.id == key,
            Execution.worker_id == dead_worker_id,
            Execution.status.in_((ExecutionStatus.STARTING, ExecutionStatus.RUNNING)),
        )
        .values(worker_id=worker_id, attempts=Execution.attempts + 1)
        .returning(Execution.id)
    )
    changed = (await service.repository.session.execute(statement)).scalar_one_or_none()
    await service.repository.session.commit()
    return None if changed is None else await service.get(key)


async def recover_orphan(worker: WorkerContext, service: ExecutionService, execution: Execution) -> None:
    """A started run whose worker is gone: re-attach to its sandbox where it survives, else end it as ERROR."""
    if not isinstance(worker.runner, DurableRunner):
        await end_orphan(worker, service, execution)
        return
    # One job per dead holder: every live worker's sweep may get here, arq keeps the first.
    job = await worker.redis.enqueue_job(
        "run_execution",
        str(execution.id),
        execution.worker_id,
        _job_id=f"{execution.id}:reattach:{execution.worker_id}",
    )
    if job is not None:
        log.warning("orphaned execution handed over", execution_id=str(execution.id), worker_id=execution.worker_id)


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


async def _run(
    worker: WorkerContext, service: ExecutionService, execution: Execution, writer: LogWriter, logged: list[Event]
) -> Outcome:
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
        if execution.status is ExecutionStatus.STARTING:  # not when re-attaching to a running one
            if await service.mark_running(execution.id) is None:
                await sandbox.kill()
                await sandbox.wait()
                return Outcome(ExecutionStatus.CANCELLED)
            await writer.status(writer.status_event(ExecutionStatus.RUNNING))
        session = _RunSession(worker, execution, sandbox, writer, _AlreadyLogged(logged))
        return await session.run()
    except BaseException:
        await sandbox.kill()
        with contextlib.suppress(Exception):
            await asyncio.shield(sandbox.wait())
        raise


class _RunSession:
    """Pumps one sandbox's output into the log and control commands into the sandbox."""

    def __init__(
        self, worker: WorkerContext, execution: Execution, sandbox: Sandbox, writer: LogWriter, logged: _AlreadyLogged
    ) -> None:
        self.worker = worker
        self.execution = execution
        self.sandbox = sandbox
        self.writer = writer
        self.logged = logged
        self.lines = LineAssembler(execution.output_bytes)
        self.lines.output_bytes = logged.output_bytes
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
                    fresh = self.logged.skip(chunk)
                    if fresh.data:
                        await chunks.put(fresh)
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


class _AlreadyLogged:
    """Output a re-attached sandbox replays from its start that an earlier attempt already logged.

    Lines are compared as text, the way the log holds them (decoded, NUL replaced, long lines cut
    into partial pieces), so every byte that produced a logged line is dropped exactly once and
    everything after it (including a partial line the dead worker never flushed) is kept.
    """

    def __init__(self, events: list[Event]) -> None:
        lines = [event for event in events if isinstance(event, LineEvent)]
        self.pending = {
            stream: "".join(line.text + ("" if line.partial else "\n") for line in lines if line.stream is stream)
            for stream in Stream
        }
        self.output_bytes = sum(len(text.encode()) for text in self.pending.values())
        self.decoders = {stream: codecs.getincrementaldecoder("utf-8")(errors="replace") for stream in Stream}

    def skip(self, chunk: OutputBytes) -> OutputBytes:
        """The part of `chunk` not logged yet."""
        pending = self.pending[chunk.stream]
        if not pending:
            return chunk
        decoder = self.decoders[chunk.stream]
        text = decoder.decode(chunk.data).replace("\x00", "\ufffd")
        taken = min(len(text), len(pending))
        self.pending[chunk.stream] = pending[taken:]
        if self.pending[chunk.stream]:
            return OutputBytes(chunk.stream, b"")
        undecoded, _ = decoder.getstate()
        return OutputBytes(chunk.stream, text[taken:].encode("utf-8", "surrogatepass") + undecoded)
