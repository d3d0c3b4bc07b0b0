"""Refusals: the server CPU time a hostile query costs the API, now that it is refused before it runs.

A real API process (development mode, default limits) is sent each query over HTTP, every time as a new
text (a trailing comment) so that no cache helps; the CPU time the process spent (utime + stime from
/proc) is divided by the number of requests. Baselines: the same queries before the limits (issue 11).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.catchup import _until_ready, free_port
from bench.report import Failed, Figure
from bench.system import Target
from podrun.db.migrate import migrate

REQUESTS = 20


def _aliases(selection: str, count: int) -> str:
    return "{ " + " ".join(f"a{index}: {selection}" for index in range(count)) + " }"


_FRAGMENTS = "".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}\n" for i in range(40))
RUNTIME = "runtimes { id language version default maxLimits { wallTimeMs cpuTimeMs memoryMiB outputBytes processes } }"
QUERIES = [
    ("5,000 aliases of runtimes (600 KB)", _aliases(RUNTIME, 5000), "3.4 s"),
    ("20,000 aliases of __typename (340 KB)", _aliases("__typename", 20_000), "2.9 s"),
    ("a 1 MB query", "{ " + "__typename " * 95_000 + "}", ""),
    (
        "5,000 aliases of runtimes, compact (98 KB)",
        "{" + "".join(f"a{i}:runtimes{{id}}" for i in range(5000)) + "}",
        "",
    ),
    ("one line just under the size limit (253 KB)", "{ " + "__typename " * 23_000 + "}", ""),
    ("fragments spreading 2^40 fields", "query { ...F0 }\n" + _FRAGMENTS + "fragment F40 on Query { __typename }", ""),
]


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run() -> list[Figure]:
    """Start an API, send each query REQUESTS times, report CPU per request."""
    target = Target.from_environment()
    await asyncio.to_thread(migrate, target.settings())  # alembic runs its own event loop
    port = free_port()
    env = target.environment()
    api = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, waited for at the end
        [sys.executable, "-m", "podrun.cli", "api", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await _until_ready(f"http://127.0.0.1:{port}/readyz")
        return await _measure(f"http://127.0.0.1:{port}/graphql", api.pid)
    finally:
        api.terminate()
        api.wait()


async def _measure(url: str, pid: int) -> list[Figure]:
    figures = []
    async with httpx.AsyncClient(timeout=60) as http:
        for name, query, baseline in QUERIES:
            started_cpu, started = _cpu_s(pid), time.perf_counter()
            for index in range(REQUESTS):
                body = (await http.post(url, json={"query": f"{query}\n# {index}"})).json()
                codes = [error.get("extensions", {}).get("code") for error in body.get("errors") or []]
                if codes != ["BAD_USER_INPUT"]:
                    raise Failed(f"{name}: not refused ({codes})")
            cpu_ms = (_cpu_s(pid) - started_cpu) / REQUESTS * 1000
            wall_ms = (time.perf_counter() - started) / REQUESTS * 1000
            figures.append(Figure(name, f"{cpu_ms:.1f} ms CPU, {wall_ms:.1f} ms", baseline))
    return figures
