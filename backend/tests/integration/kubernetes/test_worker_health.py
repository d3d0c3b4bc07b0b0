"""`podrun worker-health`, the worker's container probe: arq's health-check key present or not."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import redis

from podrun.redis_client import Keys
from tests.conftest import TEST_ENV


def probe(prefix: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PODRUN_REDIS_PREFIX": prefix}
    command = [sys.executable, "-m", "podrun.cli", "worker-health"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_worker_health_follows_arqs_health_check_key() -> None:
    prefix = f"podrun-health-test-{uuid.uuid4().hex}"
    key = Keys(prefix).health
    with redis.Redis.from_url(TEST_ENV["PODRUN_REDIS_URL"]) as client:
        missing = probe(prefix)
        assert (missing.returncode, missing.stdout) == (1, "")
        assert missing.stderr == "Error: no worker has reported to the queue lately\n"
        client.set(key, "Nov-22 12:00:00 j_complete=3 j_failed=0 j_retried=0 j_ongoing=1 queued=0", ex=30)
        try:
            healthy = probe(prefix)
        finally:
            client.delete(key)
    assert (healthy.returncode, healthy.stderr) == (0, "")
    assert healthy.stdout == "Nov-22 12:00:00 j_complete=3 j_failed=0 j_retried=0 j_ongoing=1 queued=0\n"
