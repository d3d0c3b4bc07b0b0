"""One execution on a worker: QUEUED -> STARTING (claimed) -> RUNNING (sandbox up) -> terminal.

Each status change is committed to PostgreSQL and then appended to the execution's event log.
Output bytes become lines in the log as they come (pump.py); stdin and cancel arrive on the
control stream. With `reattach_from` (the id of a worker that died holding the run), the run is
taken over and its sandbox, which a durable runner keeps alive, followed again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar
from uuid import UUID

import structlog

from podrun.core.statuses import STARTED, ExecutionStatus
from podrun.executions.already_logged import AlreadyLogged
from podrun.executions.heartbeats import Heartbeats
from podrun.executions.models import Artifact, Execution
from podrun.executions.orphans import recover_orphan
from podrun.executions.outcomes import PLATFORM_ERROR, SHUTDOWN_ERROR, Outcome
from podrun.executions.pump import SandboxPump
from podrun.executions.service import ExecutionService, now
from podrun.observability import metrics, tracing
from podrun.outages import unavailable_service
from podrun.runners.base import ArtifactCaps, ArtifactOutput, Runner, SandboxSpec, sandbox_name
from podrun.streams.control import ControlStream
from podrun.streams.events import Entry, LineBatch
from podrun.streams.log import LogWriter

log = structlog.get_logger(__name__)

# What a job reports for a run it found gone from the database.
MISSING = "MISSING"
# How long a finished run's job waits for a Redis outage to end so the log can be restored.
TERMINAL_FLUSH_S = 30.0
RETRY_FIRST_DELAY_S = 0.1
RETRY_MAX_DELAY_S = 5.0

T = TypeVar("T")


async def run_execution(
    executions: ExecutionService,
    runner: Runner,
    heartbeats: Heartbeats,
    *,
    worker_id: str,
    execution_id: UUID,
    reattach_from: str | None = None,
) -> str:
    """Run one execution to its end (or take it over); the status it ended with, or why it was not run.

    Once the run is claimed, every step leads to `finish`: a PostgreSQL or Redis outage on the way is
    waited out (the sandbox does not need either to go on), so no run is left STARTING or RUNNING.
    """
    repository = executions.repository
    if reattach_from is None:
        claimed = await until_reachable(executions, "claim", lambda: repository.claim(execution_id, worker_id))
    else:
        claimed = await until_reachable(
            executions, "take over", lambda: repository.take_over(execution_id, reattach_from, worker_id)
        )
    if not claimed:
        return await _not_claimable(executions, runner, heartbeats, execution_id)
    tracing.event("claimed", worker_id=worker_id)
    if reattach_from is None:
        await executions.left_queue(execution_id)
    execution = await until_reachable(executions, "load", lambda: executions.get(execution_id))
    created_at = execution.created_at
    logged: list[Entry] = []
    if reattach_from is None:
        # A run leaves QUEUED only here, so a claimed run's log is still empty.
        writer = LogWriter(executions.event_log(execution_id), [])
        await writer.status(writer.status_event(ExecutionStatus.STARTING))
    else:
        writer = await until_reachable(
            executions, "read the log", lambda: LogWriter.resume(executions.event_log(execution_id))
        )
        logged = list(writer.entries)
    log.info("execution starting", execution_id=str(execution_id), attempt=execution.attempts, reattach=bool(logged))
    try:
        outcome = await _run(executions, runner, execution, writer, logged, resume=reattach_from is not None)
    except asyncio.CancelledError:
        shutdown = Outcome(ExecutionStatus.ERROR, error=SHUTDOWN_ERROR)
        await asyncio.shield(executions.finish(execution_id, shutdown, writer))
        raise
    except Exception:
        log.exception("execution failed in the platform", execution_id=str(execution_id))
        outcome = Outcome(ExecutionStatus.ERROR, error=PLATFORM_ERROR)
    first_line_at = next((e.at for e in writer.entries if isinstance(e, LineBatch)), None)
    if first_line_at is not None:
        tracing.event("first output line", at=first_line_at)
    with tracing.tracer.start_as_current_span("finish", attributes={"podrun.status": outcome.status.value}):
        await until_reachable(executions, "finish", lambda: executions.finish(execution_id, outcome, writer))
    if reattach_from is None:
        metrics.first_output(created_at, first_line_at)
    # Watchers wait for the terminal event in Redis; if Redis is away, they fall back to the archive.
    await writer.close(TERMINAL_FLUSH_S)
    return outcome.status.value


async def until_reachable(executions: ExecutionService, what: str, step: Callable[[], Awaitable[T]]) -> T:
    """Do `step`, waiting out an outage of PostgreSQL or Redis with growing pauses; other errors go through."""
    delay = RETRY_FIRST_DELAY_S
    while True:
        try:
            return await step()
        except Exception as exc:
            service = unavailable_service(exc)
            if service is None:
                raise
            with contextlib.suppress(Exception):
                await executions.repository.session.rollback()
            log.warning("service unavailable; retrying", service=service, step=what, in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_DELAY_S)


async def _not_claimable(
    executions: ExecutionService, runner: Runner, heartbeats: Heartbeats, execution_id: UUID
) -> str:
    """A job for a run this worker cannot claim: cancelled in the queue, finished, or orphaned by a crash."""
    execution = await executions.get_one_or_none(id=execution_id)
    if execution is None:
        return MISSING
    # arq re-delivers a job whose worker died.
    if execution.status in STARTED and not await heartbeats.alive(execution.worker_id):
        await recover_orphan(executions, runner, execution)
    return execution.status.value


async def _run(
    executions: ExecutionService,
    runner: Runner,
    execution: Execution,
    writer: LogWriter,
    logged: list[Entry],
    *,
    resume: bool,
) -> Outcome:
    files = await until_reachable(executions, "load files", lambda: executions.repository.input_files(execution.id))
    caps = executions.settings.limits
    artifact_caps = ArtifactCaps(
        count=caps.artifacts_count, total_bytes=min(caps.artifacts_bytes, execution.limits.output_bytes)
    )
    spec = SandboxSpec(
        name=sandbox_name(execution.id),
        runtime_id=execution.runtime,
        script=execution.script,
        stdin=execution.stdin.encode() if execution.stdin is not None else None,
        limits=execution.limits,
        resume=resume,
        files=tuple(files),
        artifact_caps=artifact_caps,
    )
    with tracing.tracer.start_as_current_span("sandbox start"):
        sandbox = await runner.start(spec)
    try:
        if not execution.stdin_open:
            await sandbox.close_stdin()  # stdin given at submission: the script reads it, then EOF
        if execution.status is ExecutionStatus.STARTING:  # not when re-attaching to a running one
            mark_running = executions.repository.mark_running
            if not await until_reachable(executions, "mark running", lambda: mark_running(execution.id, now())):
                await sandbox.kill()
                await sandbox.wait()
                return Outcome(ExecutionStatus.CANCELLED)
            await writer.status(writer.status_event(ExecutionStatus.RUNNING))
            metrics.execution_started(execution.created_at, now())
        pump = SandboxPump(
            execution.id,
            sandbox,
            writer,
            output_limit=execution.limits.output_bytes,
            artifact_caps=artifact_caps,
            store_artifact=partial(_store_artifact, executions, execution.id),
            stdin_open=execution.stdin_open,
            control=ControlStream(executions.redis, executions.keys, execution.id),
            already_logged=AlreadyLogged(logged),
        )
        return await pump.run()
    except BaseException:
        await sandbox.kill()
        with contextlib.suppress(Exception):
            await asyncio.shield(sandbox.wait())
        raise


async def _store_artifact(executions: ExecutionService, execution_id: UUID, output: ArtifactOutput) -> Artifact:
    """Store an artifact the run produced, waiting out a PostgreSQL outage (the sandbox waits meanwhile)."""
    store = executions.artifacts.store
    return await until_reachable(
        executions, "store an artifact", lambda: store(execution_id, output.name, output.media_type, output.data)
    )
