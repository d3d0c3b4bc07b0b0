"""A real Prometheus (Debian's package, installed by scripts/ensure-system-packages) for the tests: its own port,
data directory and scrape configuration, asked through its HTTP query API."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.processes import LOG_DIR, free_port

SCRAPE_INTERVAL = "1s"


class Prometheus:
    """`prometheus` scraping `targets` (job name -> host:port) every second, with `rule_files` loaded."""

    def __init__(self, directory: Path, targets: dict[str, str], rule_files: list[Path]) -> None:
        binary = shutil.which("prometheus")
        assert binary is not None, "no prometheus on the PATH: run ./taskw setup (Debian's prometheus package)"
        config = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in targets.items()
            ],
        }
        config_file = directory / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{free_port()}"
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / "prometheus.log"
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"prometheus exited; see {self.log_path}"
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready after {timeout_s}s; see {self.log_path}")

    def api(self, path: str, **params: str) -> Any:
        """The `data` of a successful answer of the HTTP API at /api/v1/`path`."""
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert response.status_code == 200, body
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector `expr` evaluates to now."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        return data["result"]  # type: ignore[no-any-return]

    def value(self, expr: str) -> float | None:
        """The single value `expr` evaluates to now, None for an empty result."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def wait_for_value(self, expr: str, expected: float, timeout_s: float = 60) -> None:
        """Wait until `expr` evaluates to `expected` (scrapes come every second)."""
        deadline = time.monotonic() + timeout_s
        while (found := self.value(expr)) != expected:
            assert time.monotonic() < deadline, f"{expr} is {found}, not {expected}"
            time.sleep(0.5)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
