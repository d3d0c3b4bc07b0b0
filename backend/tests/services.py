"""Redis and PostgreSQL servers of a test's own, on free ports, which the test may kill and restart.

The machine's shared services are never touched: fault tests point Podrun at these instead. Both
run in the foreground as child processes (PostgreSQL as the `postgres` account, which it requires),
with their files in a temporary directory removed at the end.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.processes import free_port

START_TIMEOUT_S = 30.0


class OwnRedis:
    """A redis-server that keeps nothing on disk: killed, it comes back empty."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it answers."""
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=1).ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def kill(self) -> None:
        """SIGKILL: everything it held is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class OwnPostgres:
    """A PostgreSQL cluster made with initdb in a temporary directory, trusting local connections."""

    def __init__(self) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("the fault tests run PostgreSQL as the postgres account: run them as root")
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
        if not found:
            raise RuntimeError("PostgreSQL's server binaries are missing (/usr/lib/postgresql/*/bin)")
        self.bin = Path(found[-1]).parent
        self.account = pwd.getpwnam("postgres")
        self.root = Path(tempfile.mkdtemp(prefix="podrun-pg-"))
        self.data = self.root / "data"
        os.chown(self.root, self.account.pw_uid, self.account.pw_gid)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._as_postgres(
            [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        )

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of a database in this cluster."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        command = [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.root)]
        command += ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=100"]
        self.process = subprocess.Popen(
            command,
            user=self.account.pw_uid,
            group=self.account.pw_gid,
            extra_groups=[],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                check=False,
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL on port {self.port} did not start")

    def stop(self) -> None:
        """A fast shutdown: open connections are cut, committed data stays."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=START_TIMEOUT_S)

    def remove(self) -> None:
        """Stop it and delete its files."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _as_postgres(self, command: list[str]) -> None:
        subprocess.run(
            command,
            user=self.account.pw_uid,
            group=self.account.pw_gid,
            extra_groups=[],
            check=True,
            capture_output=True,
            cwd=self.root,
        )
