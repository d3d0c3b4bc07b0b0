"""The benchmark in its quickest form, so it never rots: it starts its own Podrun (API and worker processes),
runs every measurement and writes a report in which no line was lost. Its figures are for people to read;
none is asserted here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from podrun.settings import Settings
from tests.databases import drop_database
from tests.processes import LOG_DIR

BACKEND = Path(__file__).parents[2]


@pytest.fixture
def bench_env() -> Iterator[dict[str, str]]:
    """The test suite's PostgreSQL server and Redis database, with a database and key prefix of the bench's own."""
    url = make_url(os.environ["PODRUN_DATABASE_URL"])
    database_url = url.set(database=f"{url.database}_bench").render_as_string(hide_password=False)
    yield {
        **os.environ,
        "PODRUN_BENCH_DATABASE_URL": database_url,
        "PODRUN_BENCH_REDIS_URL": os.environ["PODRUN_REDIS_URL"],
        "PODRUN_BENCH_REDIS_PREFIX": "podrun-test-bench",
        "PODRUN_BENCH_LOG_DIR": str(LOG_DIR / "bench"),
    }
    drop_database(Settings(database_url=database_url))


@pytest.mark.timeout(300)
def test_the_quick_bench_measures_everything_and_loses_nothing(bench_env: dict[str, str], tmp_path: Path) -> None:
    # A session of its own, so a bench that overstays is stopped with its API and worker, not orphaning them.
    bench = subprocess.Popen(
        [sys.executable, "-u", "-m", "bench", "--quick", "--output", str(tmp_path)],
        cwd=BACKEND,
        env=bench_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = bench.communicate(timeout=280)
    except subprocess.TimeoutExpired:
        os.killpg(bench.pid, signal.SIGKILL)
        output, _ = bench.communicate()
        pytest.fail(f"the quick bench was not done after 280 s; its output so far:\n{output[-6000:]}")

    assert bench.returncode == 0, output[-8000:]
    report = json.loads((tmp_path / "latest.json").read_text())
    scenarios = report["scenarios"]
    # numpy is measured only where the scientific runtime is installed (a notice says when it is not).
    assert [name for name in scenarios if name != "numpy"] == [
        "latency", "kernel", "cpu", "throughput", "fanout", "flood", "short-lines", "burst", "catchup", "refusals"
    ]  # fmt: skip
    assert scenarios["latency"]["data"]["runs"] == 5
    assert scenarios["kernel"]["data"]["cell_first"]["p50_ms"] > 0
    assert scenarios["cpu"]["data"]["runs"] == 5
    fanout = scenarios["fanout"]["data"]["3x20"]
    for side in ("podrun", "redis_pubsub"):
        counts = [fanout[side][name] for name in ("delivered", "lost", "duplicated", "failed_watchers")]
        assert counts == [60, 0, 0, 0], fanout[side]
    assert fanout["podrun"]["statuses"]["SUCCEEDED"] == 3
    assert scenarios["flood"]["data"]["lines"] > 0
    short_lines = scenarios["short-lines"]["data"]
    assert (short_lines["empty_lines"]["lines"], short_lines["long_lines"]["lines"]) == (10_000, 10)
    assert scenarios["burst"]["data"]["runs"] == 6
    assert report["machine"]["cores"] == os.cpu_count()
    table = (tmp_path / "latest.md").read_text()
    assert table.count("| measurement | Podrun | baseline (same run) | target |") == len(scenarios)
