"""Limits as people type them (`--wall 5s --cpu 2s --memory 256M --output 1M`) and as people read them."""

from __future__ import annotations

import argparse
import math
import re

_DURATION = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m)?", re.IGNORECASE)
_MS_PER_UNIT = {"ms": 1, "s": 1000, "m": 60_000}
_SIZE = re.compile(r"(?P<number>\d+)\s*(?P<unit>[kmg]?)(?:i?b)?", re.IGNORECASE)
_BYTES_PER_UNIT = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
MIB = 1024**2


def duration_ms(text: str) -> int:
    """`5s`, `1500ms`, `2m` or `0.5` (seconds) as milliseconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 5s, 1500ms or 2m")
    return round(float(match["number"]) * _MS_PER_UNIT[(match["unit"] or "s").lower()])


def duration_s(text: str) -> int:
    """A duration in whole seconds, rounded up: `10m` is 600, `90` is 90."""
    return math.ceil(duration_ms(text) / 1000)


def size_bytes(text: str) -> int:
    """`1M`, `512K`, `2G`, `1MiB` or `4096` (bytes) as bytes; K, M and G are powers of 1024."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 256M, 512K or 1G")
    return int(match["number"]) * _BYTES_PER_UNIT[match["unit"].lower()]


def memory_mib(text: str) -> int:
    """A size in whole MiB, the unit of the memory limit: `256M` is 256, `1G` is 1024."""
    size = size_bytes(text)
    if size < MIB or size % MIB:
        raise argparse.ArgumentTypeError(f"{text!r}: memory is set in whole MiB, such as 256M or 1G")
    return size // MIB


def format_ms(ms: int) -> str:
    """Milliseconds as the options take them: 5s, 1.5s, 250ms."""
    return f"{ms / 1000:g}s" if ms >= 1000 else f"{ms}ms"


def format_bytes(size: int) -> str:
    """Bytes as the options take them: 1M, 512K, 100."""
    for unit, factor in (("G", 1024**3), ("M", MIB), ("K", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)
