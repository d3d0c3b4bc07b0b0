"""One execution on a worker: QUEUED -> STARTING (claimed) -> RUNNING (sandbox up) -> terminal.

Each status change is committed to PostgreSQL in its own short transaction (lifecycle.py) and then
appended to the execution's event log. Output bytes become lines in the log as they come (pump.py);
stdin and cancel arrive on the control stream. With `reattach_from` (the id of a worker that died
holding the run), the run is taken over and its sandbox, which a durable runner keeps alive, followed again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from functools import partial
from uuid import UUID

import structlog

from podrun.core.statuses import STARTED, ExecutionStatus
from podrun.executions.already_logged import AlreadyLogged
from podrun.executions.heartbeats import Heartbeats
from podrun.executions.lifecycle import RunLifecycle
from podrun.executions.models import Artifact, Execution
from podrun.executions.orphans import recover_orphan
from podrun.executions.outcomes import PLATFORM_ERROR, SHUTDOWN_ERROR, Outcome
from podrun.executions.pump import SandboxPump
from podrun.executions.repository import now
from podrun.observability import metrics, tracing
from podrun.outages import until_reachable
from podrun.runners.base import ArtifactCaps, ArtifactOutput, Runner, Sandbox, SandboxSpec, sandbox_name
from podrun.streams.events import Entry, LineBatch
from podrun.streams.log import LogWriter

log = structlog.get_logger(__name__)

# What a job reports for a run it found gone from the database.
MISSING = "MISSING"
# How long a finished run's job waits for a Redis outage to end so the log can be restored.
TERMINAL_FLUSH_S = 30.0


async def run_execution(
    lifecycle: RunLifecycle,
    runner: Runner,
    heartbeats: Heartbeats,
    *,
    worker_id: str,
    execution_id: UUID,
    reattach_from: str | None = None,
    start_sandbox: Callable[[SandboxSpec], Awaitable[Sandbox]] | None = None,
) -> str:
    """Run one execution to its end (or take it over); the status it ended with, or why it was not run.

    `start_sandbox` starts its sandbox instead of the runner: a kernel's cell runs in its kernel (kernels/session.py).
    Once the run is claimed, every step leads to `finish`: a PostgreSQL or Redis outage on the way is
    waited out (the sandbox does not need either to go on), so no run is left STARTING or RUNNING.
    """
    if reattach_from is None:
        execution = await until_reachable("claim", lambda: lifecycle.claim(execution_id, worker_id))
        if execution is None:
            return await _not_claimable(lifecycle, runner, heartbeats, execution_id)
    else:
        taken = await until_reachable("take over", lambda: lifecycle.take_over(execution_id, reattach_from, worker_id))
        if not taken:
            return await _not_claimable(lifecycle, runner, heartbeats, execution_id)
        execution = await until_reachable("load", lambda: lifecycle.load(execution_id))
        if execution is None:  # deleted since the take-over: only an ended run can be, so it ended meanwhile
            return MISSING
    tracing.event("claimed", worker_id=worker_id)
    logged: list[Entry] = []
    if reattach_from is None:
        # A run leaves QUEUED only here, so a claimed run's log is still empty.
        writer = LogWriter(lifecycle.event_log(execution_id), [])
        await writer.status(writer.status_event(ExecutionStatus.STARTING))
    else:
        writer = await until_reachable("read the log", lambda: LogWriter.resume(lifecycle.event_log(execution_id)))
        logged = list(writer.entries)
    log.info("execution starting", execution_id=str(execution_id), attempt=execution.attempts, reattach=bool(logged))
    try:
        start = start_sandbox or runner.start
        outcome = await _run(lifecycle, start, execution, writer, logged, resume=reattach_from is not None)
    except asyncio.CancelledError:
        shutdown = Outcome(ExecutionStatus.ERROR, error=SHUTDOWN_ERROR)
        await asyncio.shield(lifecycle.finish(execution_id, shutdown, writer))
        raise
    except Exception:
        log.exception("execution failed in the platform", execution_id=str(execution_id))
        outcome = Outcome(ExecutionStatus.ERROR, error=PLATFORM_ERROR)
    first_line_at = next((e.at for e in writer.entries if isinstance(e, LineBatch)), None)
    if first_line_at is not None:
        tracing.event("first output line", at=first_line_at)
    with tracing.tracer.start_as_current_span("finish", attributes={"podrun.status": outcome.status.value}):
        await until_reachable("finish", lambda: lifecycle.finish(execution_id, outcome, writer))
    if reattach_from is None:
        metrics.first_output(execution.created_at, first_line_at)
    # Watchers wait for the terminal event in Redis; if Redis is away, they fall back to the archive.
    await writer.close(TERMINAL_FLUSH_S)
    return outcome.status.value


async def _not_claimable(lifecycle: RunLifecycle, runner: Runner, heartbeats: Heartbeats, execution_id: UUID) -> str:
    """A job for a run this worker cannot claim: cancelled in the queue, finished, or orphaned by a crash."""
    execution = await lifecycle.load(execution_id)
    if execution is None:
        return MISSING
    # arq re-delivers a job whose worker died.
    if execution.status in STARTED and not await heartbeats.alive(execution.worker_id):
        await recover_orphan(lifecycle, runner, execution)
    return execution.status.value


async def _run(
    lifecycle: RunLifecycle,
    start: Callable[[SandboxSpec], Awaitable[Sandbox]],
    execution: Execution,
    writer: LogWriter,
    logged: list[Entry],
    *,
    resume: bool,
) -> Outcome:
    caps = lifecycle.settings.limits
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
        files=tuple(execution.files or ()),
        artifact_caps=artifact_caps,
    )
    # No session is open here: the start may take minutes (a cold pod), and nothing waits on the database.
    with tracing.tracer.start_as_current_span("sandbox start"):
        sandbox = await start(spec)
    try:
        if not execution.stdin_open:
            await sandbox.close_stdin()  # stdin given at submission: the script reads it, then EOF
        if execution.status is ExecutionStatus.STARTING:  # not when re-attaching to a running one
            if not await until_reachable("mark running", lambda: lifecycle.mark_running(execution.id)):
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
            store_artifact=partial(_store_artifact, lifecycle, execution.id),
            stdin_open=execution.stdin_open,
            control=lifecycle.control(execution.id),
            already_logged=AlreadyLogged(logged),
        )
        return await pump.run()
    except BaseException:
        await sandbox.kill()
        with contextlib.suppress(Exception):
            await asyncio.shield(sandbox.wait())
        raise


async def _store_artifact(lifecycle: RunLifecycle, execution_id: UUID, output: ArtifactOutput) -> Artifact:
    """Store an artifact the run produced, waiting out a PostgreSQL outage (the sandbox waits meanwhile)."""
    return await until_reachable("store an artifact", lambda: lifecycle.store_artifact(execution_id, output))
