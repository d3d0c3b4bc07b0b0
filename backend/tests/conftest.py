"""Test-wide setup: an own PostgreSQL database and Redis database + key prefix, so dev data is safe."""

from __future__ import annotations

import os

import pytest
from _pytest.terminal import TerminalReporter
from sqlalchemy.engine import make_url

DATABASE_URL = os.environ.get("PODRUN_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/podrun_test")
REDIS_URL = os.environ.get("PODRUN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def own_stores(database_url: str, redis_url: str) -> tuple[str, str]:
    """The database and Redis db of this test process. Under pytest-xdist (`-n 2`), worker gwN has its own:
    the database with `_gwN` appended, and the Redis db N below the suite's (15, 14, ...), since the session's
    Podrun empties its Redis db when it starts."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return database_url, redis_url
    index = int(worker.removeprefix("gw"))
    database = make_url(database_url)
    own_database = database.set(database=f"{database.database}_{worker}").render_as_string(hide_password=False)
    server, _, db = redis_url.rpartition("/")
    return own_database, f"{server}/{int(db or 0) - index}"


# Set before anything imports podrun.settings; subprocesses (API, worker) inherit these.
OWN_DATABASE_URL, OWN_REDIS_URL = own_stores(DATABASE_URL, REDIS_URL)
TEST_ENV = {
    "PODRUN_DATABASE_URL": OWN_DATABASE_URL,
    "PODRUN_REDIS_URL": OWN_REDIS_URL,
    "PODRUN_REDIS_PREFIX": "podrun-test",
    "PODRUN_JWT_SECRET": "test-secret-" + "x" * 40,
    "PODRUN_MODE": "development",
    # Short enough that the worker-crash test ends quickly.
    "PODRUN_WORKER__HEARTBEAT_TTL_S": "4",
    "PODRUN_WORKER__HEARTBEAT_INTERVAL_S": "1",
    "PODRUN_WORKER__WATCHDOG_INTERVAL_S": "1",
    "PODRUN_WORKER__SHUTDOWN_GRACE_S": "5",
    # So the retention test sees the workers' sweep within a second.
    "PODRUN_WORKER__RETENTION_SWEEP_INTERVAL_S": "1",
    # Few enough runs at once that a test can keep every slot of the worker busy (tests/e2e/test_quota.py).
    "PODRUN_WORKER__CONCURRENCY": "4",
    # Every test signs in and registers from 127.0.0.1; tests of these limits run an API of their own with the
    # defaults and give each client an address of its own (tests/e2e/test_sign_in.py).
    "PODRUN_SIGNIN__ATTEMPTS_PER_CLIENT_PER_MINUTE": "1000000",
    "PODRUN_SIGNIN__REGISTRATIONS_PER_CLIENT_PER_HOUR": "1000000",
}
os.environ.update(TEST_ENV)

pytest_plugins = ["tests.kubernetes_local.fixtures"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the local Kubernetes cluster `real_kubernetes` (the suite of `test:kubernetes`)."""
    for item in items:
        params = getattr(item, "callspec", None)
        on_real = params is not None and (
            params.params.get("runner") == "kubernetes" or params.params.get("kubernetes") == "real"
        )
        if on_real or "local_kubernetes" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.real_kubernetes)


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    """Each failure in one short line, then, loudly, whether the tests on a real Kubernetes did not run."""
    from tests.kubernetes_local.fixtures import NOT_TESTED

    failures = [*terminalreporter.stats.get("failed", []), *terminalreporter.stats.get("error", [])]
    if failures:
        terminalreporter.section("failures, one line each", sep="=", red=True, bold=True)
    for report in failures:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = (crash.message if crash is not None else str(report.longrepr)).strip().split("\n")[0]
        kind = "FAILED" if report.when == "call" else f"ERROR in {report.when}"
        terminalreporter.line(f"{kind} {report.nodeid}: {message[:200]}", red=True)

    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple) and NOT_TESTED in report.longrepr[2]
    ]
    if skipped:
        reason = skipped[0].longrepr[2].removeprefix("Skipped: ").removeprefix(f"{NOT_TESTED}: ")
        terminalreporter.section(NOT_TESTED, sep="!", red=True, bold=True)
        terminalreporter.line(f"{len(skipped)} tests did not run: {reason}", red=True, bold=True)
        terminalreporter.line("See docs/kubernetes.md, 'A real Kubernetes on this machine'.", red=True)
