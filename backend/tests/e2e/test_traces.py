"""OpenTelemetry: one run is one connected trace, from the submitExecution request through the worker to the
run's end, received by a real OTLP (HTTP/protobuf) endpoint; a bad OTEL_* setting stops a process at start."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.client import GraphQLClient
from tests.e2e.helpers import collect, final, lines, submit
from tests.e2e.observed import Observed, observed_podrun
from tests.otlp import OtlpReceiver, ReceivedSpan


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    running = OtlpReceiver()
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def traced(receiver: OtlpReceiver) -> Iterator[Observed]:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    with observed_podrun("traces", env) as running:
        yield running


def trace_of_run(receiver: OtlpReceiver, execution_id: str) -> list[ReceivedSpan]:
    """Every span of the trace the run's worker span is in, once its finish span has arrived."""
    deadline = time.monotonic() + 30
    while True:
        spans = receiver.received()
        [*runs] = [s for s in spans if s.attributes.get("podrun.execution_id") == execution_id and s.service]
        worker = [s for s in runs if s.name == "run execution"]
        trace = [s for s in spans if worker and s.trace_id == worker[0].trace_id]
        if any(s.name == "finish" for s in trace) or time.monotonic() > deadline:
            assert worker, f"no worker span for {execution_id}"
            return trace
        time.sleep(0.2)


async def test_a_run_is_one_trace_from_the_submission_through_the_worker(
    traced: Observed, receiver: OtlpReceiver
) -> None:
    client = await GraphQLClient(traced.url).register()
    execution_id = await submit(client, "print('traced')")
    events = await collect(client, execution_id)
    assert (final(events)["status"], lines(events)) == ("SUCCEEDED", ["traced"])

    trace = trace_of_run(receiver, execution_id)
    by_id = {span.span_id: span for span in trace}
    roots = [span for span in trace if span.parent_id not in by_id]
    # Connected: one root (the API's request span), every other span's parent is in the trace.
    assert [(root.service, root.parent_id) for root in roots] == [("podrun-api", "")]
    services = {span.service for span in trace}
    assert services == {"podrun-api", "podrun-worker"}
    names = {(span.service, span.name) for span in trace}
    assert {("podrun-api", "enqueue"), ("podrun-worker", "run execution"), ("podrun-worker", "sandbox start"),
            ("podrun-worker", "finish")} <= names  # fmt: skip
    assert any(span.service == "podrun-api" and span.name.startswith("POST") for span in trace), names
    assert ("podrun-api", "GraphQL Resolving: submitExecution") in names
    [run] = [span for span in trace if span.name == "run execution"]
    assert run.events == ("claimed", "first output line")
    assert by_id[run.parent_id].name == "enqueue"
    # The worker's log lines of the run carry its trace id.
    [worker] = traced.deployment.live_workers()
    assert f"trace_id={run.trace_id}" in re.sub(r"\x1b\[[0-9;]*m", "", worker.log_path.read_text())


@pytest.mark.parametrize("command", [["api", "--port", "1"], ["worker"]])
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_TRACES_SAMPLER", "sometimes"),
    ],
)
def test_a_bad_otel_setting_stops_the_process_at_start_and_says_which(
    command: list[str], variable: str, value: str
) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", variable: value}
    started = subprocess.run(
        [sys.executable, "-m", "podrun.cli", *command],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode == 1
    assert f"tracing is misconfigured: {variable}={value!r}" in started.stderr
