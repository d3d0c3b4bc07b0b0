"""Podrun's Prometheus families: the names dashboards and alerts rely on (infra/observability/).

Labels stay few and bounded (runtime, status, limit, runner, code, service): never a user, a run or a
script. Values are per process: a scrape sees one API or one worker, or, with PROMETHEUS_MULTIPROC_DIR,
every process that shares the directory (exposition.py); each gauge says how processes are combined then.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

from podrun.core.limits import LimitKind
from podrun.core.statuses import ExecutionStatus

# Seconds from a submission to its start or its first line: a warm start is tens of milliseconds, a busy queue minutes.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# Every code a client can get (core/errors.py, graphql/errors.py): series exist from the start, so alerts see zeros.
ERROR_CODES = ("UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "BAD_USER_INPUT", "RATE_LIMITED", "CONFLICT",
               "UNAVAILABLE", "INTERNAL")  # fmt: skip

EXECUTIONS_SUBMITTED = Counter("podrun_executions_submitted", "Runs accepted by submitExecution.", ["runtime"])
EXECUTIONS_FINISHED = Counter(
    "podrun_executions_finished",
    "Runs that ended, by final status and the limit they exceeded (none).",
    ["runtime", "status", "limit_exceeded"],
)
QUEUE_DEPTH = Gauge(
    "podrun_queue_depth", "Jobs waiting in the queue, as a worker last counted them.", multiprocess_mode="livemax"
)
QUEUE_WAIT = Histogram(
    "podrun_queue_wait_seconds", "From a run's submission to its start (sandbox up).", buckets=LATENCY_BUCKETS
)
FIRST_OUTPUT = Histogram(
    "podrun_first_output_seconds", "From a run's submission to its first output line.", buckets=LATENCY_BUCKETS
)
EXECUTION_DURATION = Histogram(
    "podrun_execution_duration_seconds", "From a run's start to its end.", ["runtime"], buckets=DURATION_BUCKETS
)
SANDBOX_STARTS = Counter(
    "podrun_sandbox_starts", "Sandboxes given a run, warm (started ahead) or not.", ["runner", "warm"]
)
WARM_POOL_SIZE = Gauge(
    "podrun_warm_pool_size", "Warm sandboxes waiting for a run.", ["runtime"], multiprocess_mode="livesum"
)
WORKER_SLOTS = Gauge("podrun_worker_slots", "Worker job slots, busy or free.", ["state"], multiprocess_mode="livesum")
WORKER_HEARTBEATS = Counter("podrun_worker_heartbeats", "Heartbeats workers sent to Redis.")
SUBSCRIPTIONS_ACTIVE = Gauge(
    "podrun_subscriptions_active", "executionEvents subscriptions being served.", multiprocess_mode="livesum"
)
KERNELS_STARTED = Counter("podrun_kernels_started", "Kernels accepted by startKernel.", ["runtime"])
KERNELS_ENDED = Counter("podrun_kernels_ended", "Kernels that ended, by final status (STOPPED or DEAD).", ["status"])
OUTPUT_LINES = Counter("podrun_output_lines", "Output lines appended to runs' logs.")
REFUSALS = Counter("podrun_refusals", "GraphQL errors returned to clients, by extensions.code.", ["code"])
DEPENDENCY_UP = Gauge(
    "podrun_dependency_up", "Whether the service answered the last probe (1) or not (0).", ["service"],
    multiprocess_mode="livemin",
)  # fmt: skip
DEPENDENCY_OUTAGES = Counter("podrun_dependency_outages", "Times a service stopped answering probes.", ["service"])

for _code in ERROR_CODES:
    REFUSALS.labels(code=_code)


def execution_finished(
    runtime: str,
    status: ExecutionStatus,
    limit_exceeded: LimitKind | None,
    started_at: datetime | None,
    finished_at: datetime,
) -> None:
    """Count a run that ended, and how long it ran if it started."""
    limit = limit_exceeded.value if limit_exceeded is not None else "none"
    EXECUTIONS_FINISHED.labels(runtime=runtime, status=status.value, limit_exceeded=limit).inc()
    if started_at is not None:
        EXECUTION_DURATION.labels(runtime=runtime).observe(_seconds(started_at, finished_at))


def execution_started(created_at: datetime, started_at: datetime) -> None:
    """A run's sandbox is up: how long it waited."""
    QUEUE_WAIT.observe(_seconds(created_at, started_at))


def first_output(created_at: datetime, first_line_at: datetime | None) -> None:
    """A run's first output line (if it printed any) arrived at `first_line_at`."""
    if first_line_at is not None:
        FIRST_OUTPUT.observe(_seconds(created_at, first_line_at))


def sandbox_started(runner: str, *, warm: bool) -> None:
    """A sandbox was given a run."""
    SANDBOX_STARTS.labels(runner=runner, warm=str(warm).lower()).inc()


def refused(codes: Iterable[str]) -> None:
    """Count the errors of one GraphQL response by code."""
    for code in codes:
        REFUSALS.labels(code=code).inc()


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())
