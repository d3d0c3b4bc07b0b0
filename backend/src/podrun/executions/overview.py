"""Live figures of the whole installation for admins without Grafana: the queue, runs in progress, throughput,
first-output latency and platform errors, read from PostgreSQL (the record), so every process answers the same."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from podrun.core.statuses import STARTED, ExecutionStatus
from podrun.executions.models import Execution
from podrun.executions.repository import now

THROUGHPUT_WINDOW = timedelta(minutes=5)
LATENCY_WINDOW = timedelta(minutes=15)
ERROR_WINDOW = timedelta(hours=1)
# The newest runs of the latency window that are measured: enough for a p95, bounded for a busy install.
LATENCY_SAMPLE = 500

# The first output line of each recently finished run, from its archived log: a batch of lines has `codes`
# (streams/events.py), a line archived before batches a `stream`.
FIRST_OUTPUT_PERCENTILES = text(
    """
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_s),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_s)
    FROM (
        SELECT EXTRACT(EPOCH FROM (first_line.at - executions.created_at)) AS latency_s
        FROM executions
        JOIN execution_logs ON execution_logs.execution_id = executions.id
        CROSS JOIN LATERAL (
            SELECT (event ->> 'at')::timestamptz AS at
            FROM jsonb_array_elements(execution_logs.events) AS event
            WHERE event ? 'codes' OR event ? 'stream'
            LIMIT 1
        ) AS first_line
        WHERE executions.finished_at > :since
        ORDER BY executions.finished_at DESC
        LIMIT :sample
    ) AS recent
    """
)


@dataclass(frozen=True, slots=True)
class Overview:
    """The figures, as of now."""

    queued: int
    running: int
    runs_per_minute: float
    first_output_p50_ms: int | None
    first_output_p95_ms: int | None
    errors_last_hour: int


async def overview(session: AsyncSession) -> Overview:
    """The installation's figures now."""
    moment = now()
    counts = select(
        func.count().filter(Execution.status == ExecutionStatus.QUEUED),
        func.count().filter(Execution.status.in_(STARTED)),
        func.count().filter(Execution.finished_at > moment - THROUGHPUT_WINDOW),
        func.count().filter(Execution.status == ExecutionStatus.ERROR, Execution.finished_at > moment - ERROR_WINDOW),
    ).where(
        (Execution.status.in_([ExecutionStatus.QUEUED, *STARTED])) | (Execution.finished_at > moment - ERROR_WINDOW)
    )
    queued, running, finished, errors = (await session.execute(counts)).one()
    p50, p95 = (
        await session.execute(FIRST_OUTPUT_PERCENTILES, {"since": moment - LATENCY_WINDOW, "sample": LATENCY_SAMPLE})
    ).one()
    return Overview(
        queued=queued,
        running=running,
        runs_per_minute=round(finished / (THROUGHPUT_WINDOW.total_seconds() / 60), 2),
        first_output_p50_ms=None if p50 is None else round(p50 * 1000),
        first_output_p95_ms=None if p95 is None else round(p95 * 1000),
        errors_last_hour=errors,
    )
