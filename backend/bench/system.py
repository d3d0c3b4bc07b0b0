"""The Podrun under test: started as the README starts it (`podrun api`, `podrun worker`), on its own database.

Settings are the embedded defaults except where the benchmark must differ: its own PostgreSQL database,
Redis database and key prefix, a fixed JWT secret, and per-user quotas high enough that a few benchmark
users may submit thousands of runs a minute. Each process's log goes to a file in the log directory.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from bench.report import Failed
from podrun.db.migrate import create_database, migrate
from podrun.settings import Settings, WorkerSettings

DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/podrun_bench"
REDIS_URL = "redis://127.0.0.1:6379/10"
REDIS_PREFIX = "podrun-bench"
JWT_SECRET = "bench-secret-" + "x" * 40
# Runs the worker takes at once, and bare sandboxes the baselines run at once: as in the runs measured before
# a worker's room followed its memory (a default worker now takes as many as its memory budget holds).
WORKER_CONCURRENCY = 4
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 40.0
# Enough descriptors for 5,000 WebSockets on each side; children (the API) inherit the limit.
OPEN_FILES = 65_536
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Target:
    """Where the benchmark's Podrun keeps its state: taken from PODRUN_BENCH_* or the defaults above."""

    database_url: str
    redis_url: str
    redis_prefix: str
    log_dir: Path

    @classmethod
    def from_environment(cls) -> Target:
        """The defaults, overridden by PODRUN_BENCH_DATABASE_URL, _REDIS_URL, _REDIS_PREFIX and _LOG_DIR."""
        return cls(
            database_url=os.environ.get("PODRUN_BENCH_DATABASE_URL", DATABASE_URL),
            redis_url=os.environ.get("PODRUN_BENCH_REDIS_URL", REDIS_URL),
            redis_prefix=os.environ.get("PODRUN_BENCH_REDIS_PREFIX", REDIS_PREFIX),
            log_dir=Path(os.environ.get("PODRUN_BENCH_LOG_DIR", "/tmp/podrun-bench-logs")),
        )

    def environment(self) -> dict[str, str]:
        """The PODRUN_* variables every process of the benchmark's Podrun gets."""
        return {
            "PODRUN_DATABASE_URL": self.database_url,
            "PODRUN_REDIS_URL": self.redis_url,
            "PODRUN_REDIS_PREFIX": self.redis_prefix,
            "PODRUN_JWT_SECRET": JWT_SECRET,
            "PODRUN_MODE": "development",
            # The largest quotas an administrator may set (policy/values.py).
            "PODRUN_QUOTAS__ACTIVE_EXECUTIONS_PER_USER": "10000",
            "PODRUN_QUOTAS__SUBMISSIONS_PER_MINUTE": "100000",
            # Every benchmark user registers from this one address.
            "PODRUN_SIGNIN__REGISTRATIONS_PER_CLIENT_PER_HOUR": "100000",
            "PODRUN_SIGNIN__ATTEMPTS_PER_CLIENT_PER_MINUTE": "100000",
            # A latency series subscribes once per run on one socket, faster than a person would.
            "PODRUN_GRAPHQL__OPERATIONS_PER_SOCKET_PER_SECOND": "100000",
            # The fan-out run waits (idle) while thousands of watchers connect.
            "PODRUN_LIMITS__MAXIMUM__WALL_TIME_MS": "300000",
            "PODRUN_WORKER__CONCURRENCY": str(WORKER_CONCURRENCY),
        }

    def settings(self) -> Settings:
        """The settings the benchmark's processes run with."""
        return Settings(
            database_url=self.database_url,
            redis_url=self.redis_url,
            redis_prefix=self.redis_prefix,
            jwt_secret=JWT_SECRET,
            worker=WorkerSettings(concurrency=WORKER_CONCURRENCY),
        )


def raise_open_files_limit() -> None:
    """Let this process (and the API it starts) hold thousands of sockets."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_FILES if hard == resource.RLIM_INFINITY else min(OPEN_FILES, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


async def reset_state(target: Target) -> None:
    """A fresh, migrated database and no Redis keys under the benchmark's prefix."""
    url = make_url(target.database_url)
    if url.database in {None, "", "podrun", "postgres"}:
        raise Failed(f"refusing to reset the database {url.database!r}: the benchmark needs its own")
    server = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    connection = await asyncpg.connect(server)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    finally:
        await connection.close()
    settings = target.settings()
    await create_database(settings)
    await asyncio.to_thread(migrate, settings)  # alembic runs its own event loop
    client = Redis.from_url(target.redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{target.redis_prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


class Process:
    """One `podrun <command>` child, its output in a log file, its CPU time and memory readable from /proc."""

    def __init__(self, target: Target, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        target.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = target.log_dir / f"{name}.log"
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "podrun.cli", *args],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, **target.environment(), **(env or {})},
            )

    @property
    def pid(self) -> int:
        """The process id (what py-spy attaches to)."""
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_bytes(self) -> int:
        """The process's resident memory now."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        """SIGTERM (a worker finishes its runs), then SIGKILL if it takes too long."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Podrun:
    """The API and one worker; the worker can be restarted with other settings (a cold pool)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        for old_log in ("api.log", "worker.log"):
            (target.log_dir / old_log).unlink(missing_ok=True)
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api = Process(target, "api", "api", "--port", str(self.port))
        self.worker = Process(target, "worker", "worker")
        self.worker_env: dict[str, str] = {}

    async def wait_ready(self) -> None:
        """Until the API answers /readyz (it checks PostgreSQL and Redis)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() < deadline:
                if self.api.process.poll() is not None:
                    raise Failed(f"the API exited early; see {self.api.log_path}")
                try:
                    if (await http.get(f"{self.base_url}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise Failed(f"the API was not ready after {READY_TIMEOUT_S:.0f} s; see {self.api.log_path}")

    async def restart_worker(self, env: dict[str, str]) -> None:
        """Stop the worker (it finishes its runs) and start another with `env` on top of the benchmark's."""
        await asyncio.to_thread(self.worker.stop)
        self.worker_env = env
        self.worker = Process(self.target, "worker", "worker", env=env)

    def stop(self) -> None:
        """Stop the worker, then the API."""
        self.worker.stop()
        self.api.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
