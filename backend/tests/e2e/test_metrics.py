"""/metrics of the API and of a worker: the families operators rely on move as runs go, and nothing in them names
a user, a script or a token."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.client import GraphQLClient, GraphQLFailure
from tests.e2e.helpers import collect, final, lines, submit
from tests.e2e.observed import Observed, observed_podrun, sample, wait_for_scrape
from tests.processes import free_port

FAMILIES = [
    "podrun_executions_submitted_total",
    "podrun_executions_finished_total",
    "podrun_queue_depth",
    "podrun_queue_wait_seconds",
    "podrun_first_output_seconds",
    "podrun_execution_duration_seconds",
    "podrun_sandbox_starts_total",
    "podrun_warm_pool_size",
    "podrun_worker_slots",
    "podrun_worker_heartbeats_total",
    "podrun_subscriptions_active",
    "podrun_output_lines_total",
    "podrun_refusals_total",
    "podrun_dependency_up",
    "podrun_dependency_outages_total",
]


@pytest.fixture(scope="module")
def observed() -> Iterator[Observed]:
    with observed_podrun("metrics") as running:
        yield running


def scrape(url: str) -> str:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def wait_until(url: str, name: str, value: float, **labels: str) -> str:
    """A scrape of `url` once the series is at `value` (metrics are set just after the event they count; gauges
    sampled every second)."""
    deadline = time.monotonic() + 30
    while True:
        text = await asyncio.to_thread(scrape, url)
        if sample(text, name, **labels) == value or time.monotonic() > deadline:
            assert sample(text, name, **labels) == value, (name, labels)
            return text
        await asyncio.sleep(0.2)


async def test_runs_move_the_api_and_worker_families_and_nothing_private_is_exposed(observed: Observed) -> None:
    marker = uuid.uuid4().hex
    email = f"metrics-{marker}@example.com"
    client = await GraphQLClient(observed.url).register(email)
    runtimes = (await client.execute("{ runtimes { id default } }"))["runtimes"]
    [runtime] = [item["id"] for item in runtimes if item["default"]]
    scripts = [f"print('{marker}-out')", f"print('{marker}-a'); print('{marker}-b')", "raise SystemExit(3)"]
    ids = [await submit(client, script) for script in scripts]
    outcomes = [await collect(client, execution_id) for execution_id in ids]
    assert [final(events)["status"] for events in outcomes] == ["SUCCEEDED", "SUCCEEDED", "FAILED"]
    assert lines(outcomes[1]) == [f"{marker}-a", f"{marker}-b"]
    with pytest.raises(GraphQLFailure) as refused:
        await client.execute("mutation($id: ID!) { cancelExecution(id: $id) { id } }", {"id": str(uuid.uuid4())})
    assert refused.value.code == "NOT_FOUND"

    api = await wait_until(observed.api_metrics, "podrun_executions_submitted_total", 3, runtime=runtime)
    assert sample(api, "podrun_refusals_total", code="NOT_FOUND") == 1
    assert sample(api, "podrun_refusals_total", code="RATE_LIMITED") == 0
    assert sample(api, "podrun_subscriptions_active") == 0
    assert sample(api, "podrun_dependency_up", service="database") == 1
    assert sample(api, "podrun_dependency_up", service="redis") == 1
    assert sample(api, "podrun_dependency_outages_total", service="redis") == 0
    assert sample(api, "podrun_http_requests_total", path="/graphql", method="POST") > 0
    await wait_until(observed.worker_metrics, "podrun_first_output_seconds_count", 2)
    worker = await wait_until(observed.worker_metrics, "podrun_worker_slots", 0, state="busy")
    await wait_until(observed.worker_metrics, "podrun_queue_depth", 0)
    succeeded = {"runtime": runtime, "status": "SUCCEEDED", "limit_exceeded": "none"}
    assert sample(worker, "podrun_executions_finished_total", **succeeded) == 2
    assert sample(worker, "podrun_executions_finished_total", status="FAILED") == 1
    assert sample(worker, "podrun_queue_wait_seconds_count") == 3
    assert sample(worker, "podrun_queue_wait_seconds_bucket", le="+Inf") == 3
    assert sample(worker, "podrun_execution_duration_seconds_count", runtime=runtime) == 3
    assert sample(worker, "podrun_output_lines_total") == 3  # SystemExit(3) prints nothing
    assert sample(worker, "podrun_sandbox_starts_total", runner="local") == 3
    assert sample(worker, "podrun_worker_slots", state="free") == 4  # the default concurrency, none busy
    assert sample(worker, "podrun_worker_heartbeats_total") > 0
    for text in (api, worker):
        assert [family for family in FAMILIES if f"\n# TYPE {family} " not in text] == []
    # Nothing of the runs' owner, scripts, output or credentials.
    for text in (api, worker):
        for secret in (marker, email, client.token, client.refresh_token, client.user_id, *ids):
            assert secret
            assert secret not in text


async def test_subscriptions_being_served_are_counted(observed: Observed) -> None:
    client = await GraphQLClient(observed.url).register()
    execution_id = await submit(client, "import sys; print('ready', flush=True); sys.stdin.readline()")
    subscription = client.subscribe(
        "subscription($id: ID!) { executionEvents(id: $id) { __typename } }", {"id": execution_id}
    )
    await anext(subscription)
    try:
        await wait_until(observed.api_metrics, "podrun_subscriptions_active", 1)
    finally:
        await subscription.aclose()
        await client.execute("mutation($id: ID!) { cancelExecution(id: $id) { id } }", {"id": execution_id})
    await wait_until(observed.api_metrics, "podrun_subscriptions_active", 0)


def test_metrics_can_be_served_on_a_port_of_their_own_away_from_the_api() -> None:
    port = free_port()
    with observed_podrun("metrics-apart", {"PODRUN_METRICS__API_PORT": str(port)}) as running:
        # Not served beside /graphql (a 404, or the web client's page when it is built, as for any unknown path).
        beside = httpx.get(running.api_metrics, timeout=10)
        assert beside.status_code in (200, 404)
        assert "podrun_" not in beside.text
        text = wait_for_scrape(f"http://127.0.0.1:{port}/metrics")
        assert "podrun_executions_submitted_total" in text
        assert "podrun_dependency_up" in text


def test_with_a_multiprocess_directory_the_api_serves_every_process_values(tmp_path: Path) -> None:
    """PROMETHEUS_MULTIPROC_DIR (several API processes behind one port): /metrics reads the shared directory."""
    with observed_podrun("metrics-multiprocess", {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}) as running:
        text = wait_for_scrape(running.api_metrics)
        assert sample(text, "podrun_dependency_up", service="redis") == 1
        assert sample(text, "podrun_refusals_total", code="INTERNAL") == 0
        assert any(path.name.startswith("counter_") for path in tmp_path.iterdir())
