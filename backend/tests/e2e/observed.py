"""A Podrun of its own for the observability tests: an API and a worker that serves metrics, on a database and
under a Redis prefix of their own, so no other worker takes (or sweeps) their runs and every count is theirs."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from podrun.settings import Settings
from tests.databases import delete_keys, drop_database, fresh_database
from tests.processes import PodrunDeployment, free_port, wait_ready


@dataclass(frozen=True)
class Observed:
    """The deployment, and where its API and its worker serve their metrics."""

    deployment: PodrunDeployment
    api_metrics: str
    worker_metrics: str

    @property
    def url(self) -> str:
        return self.deployment.base_url


@contextmanager
def observed_podrun(name: str, env: dict[str, str] | None = None) -> Iterator[Observed]:
    """Start the API and one worker (worker metrics on a free port) and stop them, and drop their keys, after."""
    prefix = f"podrun-test-{name}"
    worker_port = free_port()
    session = Settings()
    database = Settings(database_url=f"{session.database_url}_{name.replace('-', '_')}")
    fresh_database(database)
    delete_keys(session.redis_url, prefix)
    deployment = PodrunDeployment(
        name,
        {
            "PODRUN_DATABASE_URL": database.database_url,
            "PODRUN_REDIS_PREFIX": prefix,
            "PODRUN_METRICS__WORKER_PORT": str(worker_port),
            **(env or {}),
        },
    )
    try:
        deployment.worker()
        wait_ready(deployment.base_url, deployment.api)
        worker_metrics = f"http://127.0.0.1:{worker_port}/metrics"
        wait_for_scrape(worker_metrics)
        yield Observed(deployment, f"{deployment.base_url}/metrics", worker_metrics)
    finally:
        deployment.stop()
        delete_keys(session.redis_url, prefix)
        drop_database(database)


def wait_for_scrape(url: str, timeout_s: float = 60) -> str:
    """The text of the first successful scrape of `url`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return response.text
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing serves metrics at {url}")
        time.sleep(0.2)


def sample(scrape: str, name: str, **labels: str) -> float:
    """The value of one series in a scrape's text (0 when absent), labels matched as given (others ignored)."""
    total = 0.0
    for line in scrape.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
        if match is None or match[1] != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match[2] or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            total += float(match[3])
    return total
