"""`python -m bench [--quick] [--only NAMES] [--output DIR]`: start Podrun, run the benchmarks, write the report.

Exit 1 if a benchmark saw something functionally wrong (lost, duplicated or failed output).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import structlog

from bench import (
    burst,
    catchup,
    cpu,
    fanout,
    flood,
    imports,
    kernel,
    latency,
    lines,
    pod,
    refusals,
    scientific,
    short_lines,
    throughput,
)
from bench.client import http_client
from bench.context import Bench
from bench.plan import FULL, QUICK
from bench.report import Failed, Figure, Section, load_average, machine, print_section, write
from bench.sandbox import BareCommands
from bench.system import Podrun, Target, raise_open_files_limit, reset_state

RESULTS = Path(__file__).parent / "results"


async def _extra(title: str, measure: Callable[[], Awaitable[list[Figure]]]) -> Section:
    return Section(title, await measure())


SCENARIOS: dict[str, Callable[[Bench], Awaitable[Section | None]]] = {
    "latency": latency.run,
    "cpu": cpu.run,
    "kernel": kernel.run,
    "throughput": throughput.run,
    "fanout": fanout.run,
    "flood": flood.run,
    "short-lines": short_lines.run,
    "burst": burst.run,
    "numpy": scientific.run,
    "catchup": lambda _: _extra("catch-up: a late watcher of a finished run with 100,000 lines", catchup.run),
    "refusals": lambda _: _extra("refusals: server CPU per hostile query, 20 each", refusals.run),
    # Not part of the default run: first imports of the scientific runtime in cold sandboxes (the numpy figure
    # above is through Podrun), the line assembler alone, and pods on the local Kubernetes.
    "imports": lambda _: _extra("scientific runtime: first imports in cold sandboxes, 5 runs", imports.run),
    "lines": lambda _: _extra("LineAssembler on 50 MB of mixed output", lines.run),
    "pod": lambda _: _extra("print('hi') in a pod of the local Kubernetes 1.20", pod.run),
}
DEFAULT = [
    "latency",
    "kernel",
    "cpu",
    "throughput",
    "fanout",
    "flood",
    "short-lines",
    "burst",
    "numpy",
    "catchup",
    "refusals",
]


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: seconds, not minutes (the smoke test)")
    parser.add_argument("--only", default=",".join(DEFAULT), help=f"comma-separated, of: {', '.join(SCENARIOS)}")
    parser.add_argument("--fanout", help="watchers x lines pairs instead of the plan's, e.g. 1000x1000,5000x200")
    parser.add_argument(
        "--output", type=Path, help="where latest.json and latest.md go (default: results/, or results/quick/)"
    )
    arguments = parser.parse_args()
    unknown = set(arguments.only.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    return arguments


async def main(arguments: argparse.Namespace) -> int:
    """Start Podrun, run the chosen benchmarks one after another (they would disturb each other), write the report."""
    plan = QUICK if arguments.quick else FULL
    if arguments.fanout:
        pairs = [pair.split("x") for pair in arguments.fanout.split(",")]
        plan = replace(plan, fanout=tuple((int(watchers), int(lines)) for watchers, lines in pairs))
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = load_average()
    started = time.perf_counter()
    raise_open_files_limit()
    target = Target.from_environment()
    await reset_state(target)
    settings = target.settings()
    podrun = Podrun(target)
    sections: dict[str, Section] = {}
    notices: list[str] = []
    failed = False
    try:
        await podrun.wait_ready()
        print(f"Podrun ({plan.name} run) is up after {time.perf_counter() - started:.1f} s; logs in {target.log_dir}")
        async with http_client() as http:
            bench = Bench(plan, podrun, http, BareCommands(settings), settings.worker.concurrency)
            for name in arguments.only.split(","):
                began = time.perf_counter()
                print(f"\n[{datetime.now(UTC):%H:%M:%S}] {name} ...", flush=True)
                deadline = asyncio.timeout(plan.section_timeout_s)
                try:
                    async with deadline:
                        section = await SCENARIOS[name](bench)
                except TimeoutError:
                    if not deadline.expired():
                        raise
                    overstayed = f"not done after {plan.section_timeout_s:.0f} s"
                    print(f"\n{name}: FAILED: {overstayed}")
                    section = Section(f"{name}: FAILED", [Figure("failure", overstayed)])
                    failed = True
                except Failed as exc:
                    print(f"\n{name}: FAILED: {exc}")
                    section = Section(f"{name}: FAILED", [Figure("failure", str(exc)[:300])])
                    failed = True
                if section is None:
                    notice = f"{name}: skipped, no runtime with the scientific stack (numpy) is installed"
                    print(f"\n{notice}")
                    notices.append(notice)
                    continue
                section.seconds = time.perf_counter() - began
                failed = failed or section.failed
                print_section(section)
                sections[name] = section
    finally:
        await asyncio.to_thread(podrun.stop)
    header = {
        "started_at": started_at,
        "profile": plan.name,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine(),
        "load_before": load_before,
        "load_after": load_average(),
        "settings": {
            "worker_concurrency": settings.worker.concurrency,
            "warm_pool_size": settings.sandbox.warm_pool_size,
            "api_processes": 1,
            "workers": 1,
        },
        "notices": notices,
    }
    # Only a full run replaces the committed report.
    output = arguments.output or (RESULTS / "quick" if arguments.quick else RESULTS)
    json_path, md_path = write(output, header, sections)
    print(f"\nwrote {json_path} and {md_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    # Podrun's info logs (interpreter discovery, isolation) would break up the tables.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    sys.exit(asyncio.run(main(_arguments())))
