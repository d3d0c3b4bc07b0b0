"""Limits as typed on prun's command line, and as prun prints them."""

from __future__ import annotations

import argparse

import pytest
from podrun_client.limits import duration_ms, duration_s, format_bytes, format_ms, memory_mib, size_bytes


@pytest.mark.parametrize(
    ("text", "ms"), [("5s", 5000), ("1500ms", 1500), ("2m", 120_000), ("0.5", 500), ("1.25s", 1250), (" 3 S ", 3000)]
)
def test_durations(text: str, ms: int) -> None:
    assert duration_ms(text) == ms


@pytest.mark.parametrize(("text", "seconds"), [("10m", 600), ("90", 90), ("1500ms", 2)])
def test_durations_in_whole_seconds_round_up(text: str, seconds: int) -> None:
    assert duration_s(text) == seconds


@pytest.mark.parametrize(
    ("text", "size"), [("1M", 1024**2), ("512K", 512 * 1024), ("2G", 2 * 1024**3), ("1MiB", 1024**2), ("4096", 4096)]
)
def test_sizes(text: str, size: int) -> None:
    assert size_bytes(text) == size


@pytest.mark.parametrize(("text", "mib"), [("256M", 256), ("1G", 1024), ("1048576", 1)])
def test_memory_in_whole_mib(text: str, mib: int) -> None:
    assert memory_mib(text) == mib


@pytest.mark.parametrize(
    ("parse", "text"),
    [(duration_ms, "5h"), (duration_ms, "fast"), (size_bytes, "1T"), (size_bytes, "-1M"), (memory_mib, "512K")],
)
def test_nonsense_is_a_usage_error(parse: object, text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse(text)  # type: ignore[operator]


@pytest.mark.parametrize(("ms", "shown"), [(5000, "5s"), (1500, "1.5s"), (250, "250ms")])
def test_format_ms(ms: int, shown: str) -> None:
    assert format_ms(ms) == shown


@pytest.mark.parametrize(("size", "shown"), [(1024**2, "1M"), (1024, "1K"), (1000, "1000"), (3 * 1024**3, "3G")])
def test_format_bytes(size: int, shown: str) -> None:
    assert format_bytes(size) == shown
