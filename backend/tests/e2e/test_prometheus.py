"""A real Prometheus scrapes a running API and worker: the counters and histograms move as runs go, and the
alert rules and the dashboard (infra/observability) name only metrics that a real scrape has, and evaluate."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.client import GraphQLClient
from tests.e2e.helpers import collect, final, submit
from tests.e2e.observed import Observed, observed_podrun
from tests.prometheus import Prometheus

OBSERVABILITY = Path(__file__).resolve().parents[3] / "infra" / "observability"
ALERTS = OBSERVABILITY / "prometheus" / "alerts.yaml"
DASHBOARD = OBSERVABILITY / "grafana" / "podrun-dashboard.json"
RUNS = {"print('one')": "SUCCEEDED", "print('two'); print('three')": "SUCCEEDED", "raise SystemExit(1)": "FAILED"}


def alert_expressions() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


@pytest.fixture(scope="module")
def observed() -> Iterator[Observed]:
    with observed_podrun("prometheus") as running:
        yield running


@pytest.fixture(scope="module")
async def prometheus(observed: Observed, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Prometheus]:
    """Prometheus scraping the API and the worker, with the alert rules loaded, once the runs of RUNS are over."""
    targets = {"api": observed.api_metrics, "worker": observed.worker_metrics}
    running = Prometheus(
        tmp_path_factory.mktemp("prometheus"), {job: urlsplit(url).netloc for job, url in targets.items()}, [ALERTS]
    )
    try:
        running.wait_for_value('sum(up{job=~"api|worker"})', 2)
        # Before any run: no series of runs yet (labelled counters start with their first label values).
        assert running.value("absent(podrun_executions_submitted_total)") == 1
        client = await GraphQLClient(observed.url).register()
        ids = [await submit(client, script) for script in RUNS]
        assert [final(await collect(client, execution_id))["status"] for execution_id in ids] == list(RUNS.values())
        yield running
    finally:
        running.stop()


def test_prometheus_sees_the_counters_and_histograms_move_as_the_runs_went(prometheus: Prometheus) -> None:
    prometheus.wait_for_value("sum(podrun_executions_submitted_total)", 3)
    prometheus.wait_for_value('sum(podrun_executions_finished_total{status="SUCCEEDED", limit_exceeded="none"})', 2)
    prometheus.wait_for_value('sum(podrun_executions_finished_total{status="FAILED"})', 1)
    prometheus.wait_for_value("sum(podrun_queue_wait_seconds_count)", 3)
    prometheus.wait_for_value('sum(podrun_queue_wait_seconds_bucket{le="+Inf"})', 3)
    prometheus.wait_for_value("sum(podrun_first_output_seconds_count)", 2)
    prometheus.wait_for_value("sum(podrun_execution_duration_seconds_count)", 3)
    prometheus.wait_for_value("sum(podrun_output_lines_total)", 3)
    prometheus.wait_for_value("sum(podrun_sandbox_starts_total)", 3)
    prometheus.wait_for_value("max(podrun_queue_depth)", 0)
    # register and the three submissions
    prometheus.wait_for_value('sum(podrun_http_requests_total{job="api", path="/graphql", method="POST"})', 4)
    prometheus.wait_for_value('min(podrun_dependency_up{job=~"api|worker"})', 1)
    prometheus.wait_for_value("count(podrun_dependency_up)", 4)  # database and redis, from each process
    wait_s = prometheus.value("histogram_quantile(0.95, sum by (le) (podrun_queue_wait_seconds_bucket))")
    assert wait_s is not None
    assert 0 < wait_s <= 600
    heartbeats = prometheus.value('increase(podrun_worker_heartbeats_total{job="worker"}[1m])')
    assert heartbeats is not None
    assert heartbeats > 0


def test_promtool_accepts_the_alert_rules() -> None:
    checked = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_expressions())} rules found" in checked.stdout


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_every_metric_the_alerts_and_the_dashboard_name_is_scraped_and_each_expression_evaluates(
    prometheus: Prometheus, source: str
) -> None:
    expressions = alert_expressions() if source == "alerts" else dashboard_expressions()
    scraped = set(prometheus.api("label/__name__/values"))
    named = {name for expr in expressions for name in re.findall(r"\bpodrun_\w+", expr)}
    assert named
    assert sorted(named - scraped) == []
    for expr in expressions:
        prometheus.api("query", query=expr)  # asserts Prometheus evaluated it without an error


def test_prometheus_evaluates_every_alert_rule_without_error(prometheus: Prometheus) -> None:
    deadline = time.monotonic() + 30
    while True:
        rules = [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
        if all(rule["lastEvaluation"] > "2000" for rule in rules) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(rules) == len(alert_expressions())
    assert [(rule["name"], rule["health"], rule.get("lastError", "")) for rule in rules if rule["health"] != "ok"] == []
    # With a worker beating and both services up, none of these fires.
    assert [rule["name"] for rule in rules if rule["state"] == "firing"] == []
