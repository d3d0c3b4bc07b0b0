"""`podrun dev` supervises its children: a worker that dies is restarted, and Podrun keeps working."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from podrun.settings import Settings
from tests.client import GraphQLClient
from tests.databases import delete_keys, drop_database
from tests.e2e.helpers import collect, final, lines, submit
from tests.e2e.observed import wait_for_scrape
from tests.processes import PodrunProcess, free_port, wait_ready

PREFIX = "podrun-test-dev"


def children(parent: int, marker: str) -> list[int]:
    """Processes whose parent is `parent` and whose command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and marker in cmdline:
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def dev(settings: Settings) -> Iterator[tuple[str, PodrunProcess]]:
    database_url = settings.database_url.removesuffix("_test") + "_dev_test"
    drop_database(Settings(database_url=database_url))
    delete_keys(settings.redis_url, PREFIX)
    port = free_port()
    process = PodrunProcess(
        "dev", "dev", "--port", str(port), env={"PODRUN_DATABASE_URL": database_url, "PODRUN_REDIS_PREFIX": PREFIX}
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield url, process
    finally:
        process.stop()
        drop_database(Settings(database_url=database_url))
        delete_keys(settings.redis_url, PREFIX)


async def test_a_killed_worker_is_restarted_and_podrun_keeps_running_scripts(dev: tuple[str, PodrunProcess]) -> None:
    url, process = dev
    [worker] = await asyncio.to_thread(_wait_for, lambda: children(process.process.pid, "podrun.cli worker"))
    os.kill(worker, signal.SIGKILL)
    restarted = await asyncio.to_thread(
        _wait_for, lambda: [pid for pid in children(process.process.pid, "podrun.cli worker") if pid != worker]
    )
    assert len(restarted) == 1
    assert process.process.poll() is None
    demo = GraphQLClient(url)
    token = await demo.execute('mutation { login(email: "demo@podrun.dev", password: "podrun-demo") { accessToken } }')
    signed_in = demo.with_token(token["login"]["accessToken"])
    events = await collect(signed_in, await submit(signed_in, "print('still running scripts')"))
    assert (final(events)["status"], lines(events)) == ("SUCCEEDED", ["still running scripts"])


def _wait_for(probe: object, timeout_s: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found: list[int] = probe()  # type: ignore[operator]
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("no such process appeared")


def test_dev_serves_the_api_and_worker_metrics_and_says_where(dev: tuple[str, PodrunProcess]) -> None:
    url, process = dev
    printed = re.findall(r"metrics: API (\S+)  worker (\S+)", process.log_path.read_text())
    api_metrics, worker_metrics = printed[-1]  # the log file is kept across sessions: this session's is last
    assert api_metrics == f"{url}/metrics"
    for address in (api_metrics, worker_metrics):
        assert "# TYPE podrun_dependency_up gauge" in wait_for_scrape(address)
