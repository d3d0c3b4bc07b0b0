"""Starting Podrun's API and workers as real processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

LOG_DIR = Path(os.environ.get("PODRUN_TEST_LOG_DIR", "/tmp/podrun-test-logs"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PodrunProcess:
    """One `podrun <command>` child process with its output in a log file."""

    def __init__(
        self, name: str, *args: str, env: dict[str, str] | None = None, python: Sequence[str] = (sys.executable,)
    ) -> None:
        """Start `podrun <args>` with `python` and this process's environment, overridden by `env`."""
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*python, "-m", "podrun.cli", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up."""
        self.process.kill()
        self.process.wait()

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, then wait; SIGKILL if it does not stop in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def wait_ready(base_url: str, process: PodrunProcess, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise RuntimeError(f"API exited early; see {process.log_path}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"API not ready after {timeout}s; see {process.log_path}")


class PodrunDeployment:
    """An API process with workers that tests may add and kill, all with the same environment overrides."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.env = env
        self.processes: list[PodrunProcess] = []
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api = self.spawn(f"{name}-api", "api", "--port", str(self.port))

    def spawn(self, name: str, *args: str, python: Sequence[str] = (sys.executable,)) -> PodrunProcess:
        process = PodrunProcess(name, *args, env=self.env, python=python)
        self.processes.append(process)
        return process

    def restart_api(self) -> None:
        """A new API process on the same port (after the old one was killed)."""
        self.api = self.spawn(f"{self.name}-api", "api", "--port", str(self.port))
        wait_ready(self.base_url, self.api)

    def worker(self, python: Sequence[str] = (sys.executable,)) -> PodrunProcess:
        return self.spawn(f"{self.name}-worker", "worker", python=python)

    def live_workers(self) -> list[PodrunProcess]:
        return [p for p in self.processes if p is not self.api and p.process.poll() is None]

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
