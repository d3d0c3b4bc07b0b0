"""What a benchmark returns and how the whole run is written: printed tables, a JSON report and a markdown table."""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Figure:
    """One row: what was measured, its value, the baseline measured in the same run, and the issue's target."""

    name: str
    value: str
    baseline: str = ""
    target: str = ""


@dataclass(slots=True)
class Section:
    """One benchmark's result: its rows, and the raw numbers behind them for the JSON report."""

    title: str
    figures: list[Figure]
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    # Something functionally wrong was seen (lost or duplicated lines, errors): the run exits 1.
    failed: bool = False


class Failed(Exception):
    """A benchmark saw something functionally wrong (lost, duplicated or reordered output, a failed run)."""


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of `values` (fraction 0.5 = median)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def median(values: list[float]) -> float:
    """The median of `values`."""
    return statistics.median(values)


def spread(values_s: list[float]) -> dict[str, float]:
    """p50/p95/p99 of durations in seconds, as milliseconds."""
    return {f"p{p}_ms": round(percentile(values_s, p / 100) * 1000, 2) for p in (50, 95, 99)}


def ms(seconds: float) -> str:
    """A duration in milliseconds, to one decimal."""
    return f"{seconds * 1000:.1f}"


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (the machine is shared: they qualify every figure)."""
    return [round(load, 2) for load in os.getloadavg()]


def machine() -> dict[str, Any]:
    """Cores, memory, Python and kernel of this machine."""
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def print_section(section: Section) -> None:
    """Print one benchmark's figures as an aligned table."""
    figures = section.figures
    width = max(len(figure.name) for figure in figures)
    value_width = max(len(figure.value) for figure in figures)
    print(f"\n{section.title}  ({section.seconds:.1f} s)")
    print(f"  {'':{width}}  {'measured':>{value_width}}  baseline")
    for figure in figures:
        target = f"   [target {figure.target}]" if figure.target else ""
        print(f"  {figure.name:{width}}  {figure.value:>{value_width}}  {figure.baseline}{target}")


def write(directory: Path, header: dict[str, Any], sections: dict[str, Section]) -> tuple[Path, Path]:
    """Write `latest.json` and `latest.md` into `directory`; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    report = {**header, "scenarios": {name: asdict(section) for name, section in sections.items()}}
    json_path = directory / "latest.json"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path = directory / "latest.md"
    md_path.write_text(markdown(header, sections))
    return json_path, md_path


def markdown(header: dict[str, Any], sections: dict[str, Section]) -> str:
    """The report as one markdown table per benchmark, under a line describing the machine and the run."""
    box = header["machine"]
    lines = [
        f"Measured {header['started_at']} ({header['profile']} run, {header['seconds']:.0f} s) on {box['cores']} cores "
        f"({box['cpu']}), {box['memory_gib']} GiB RAM, Linux {box['kernel']}, Python {box['python']}; "
        f"load average {_loads(header['load_before'])} before, {_loads(header['load_after'])} after "
        "(the machine is shared: only ratios to the baselines compare between runs).",
    ]
    for notice in header.get("notices", []):
        lines += ["", f"*{notice}*"]
    for section in sections.values():
        lines += [
            "",
            f"**{section.title}**",
            "",
            "| measurement | Podrun | baseline (same run) | target |",
            "|---|---|---|---|",
        ]
        lines += [f"| {f.name} | {f.value} | {f.baseline} | {f.target} |" for f in section.figures]
    return "\n".join(lines) + "\n"


def _loads(loads: list[float]) -> str:
    return " / ".join(f"{load:.2f}" for load in loads)
