"""Small helpers the benchmarks share: percentiles and the printed table."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Figure:
    """One printed row: what was measured, its value and the baseline it is compared with."""

    name: str
    value: str
    baseline: str = ""


class Failed(Exception):
    """A benchmark saw something functionally wrong (lost, duplicated or reordered output)."""


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of `values` (fraction 0.5 = median)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def median(values: list[float]) -> float:
    """The median of `values`."""
    return statistics.median(values)


def print_table(title: str, figures: list[Figure]) -> None:
    """Print one benchmark's figures as an aligned table."""
    width = max(len(figure.name) for figure in figures)
    value_width = max(len(figure.value) for figure in figures)
    print(f"\n{title}")
    print(f"  {'':{width}}  {'measured':>{value_width}}  baseline")
    for figure in figures:
        print(f"  {figure.name:{width}}  {figure.value:>{value_width}}  {figure.baseline}")
