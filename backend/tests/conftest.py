"""Test-wide setup: an own PostgreSQL database and Redis database + key prefix, so dev data is safe."""

from __future__ import annotations

import os

# Set before anything imports podrun.settings; subprocesses (API, worker) inherit these.
TEST_ENV = {
    "PODRUN_DATABASE_URL": os.environ.get(
        "PODRUN_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/podrun_test"
    ),
    "PODRUN_REDIS_URL": os.environ.get("PODRUN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    "PODRUN_REDIS_PREFIX": "podrun-test",
    "PODRUN_JWT_SECRET": "test-secret-" + "x" * 40,
    "PODRUN_MODE": "development",
    # Short enough that the worker-crash test ends quickly.
    "PODRUN_WORKER__HEARTBEAT_TTL_S": "4",
    "PODRUN_WORKER__HEARTBEAT_INTERVAL_S": "1",
    "PODRUN_WORKER__WATCHDOG_INTERVAL_S": "1",
    "PODRUN_WORKER__SHUTDOWN_GRACE_S": "5",
}
os.environ.update(TEST_ENV)
