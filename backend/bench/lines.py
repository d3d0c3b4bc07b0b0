"""LineAssembler throughput on 50 MB of mixed output: short lines, long lines, non-ASCII and invalid UTF-8.

The data is fed in 64 KiB chunks, as the sandbox's output frames arrive. The baseline is the
simplest thing that turns the same bytes into text lines, `bytes.split(b"\\n")` and a decode of each
line: it keeps no state across chunks, cuts nothing and maps no NULs, so it is the ceiling the
assembler's extra work (incremental decoding, 64 KiB cuts, partial lines) is measured against.
"""

from __future__ import annotations

import asyncio
import random
import time

from bench.report import Failed, Figure
from podrun.core.output import Stream
from podrun.streams.lines import LineAssembler, Run, line_count

TOTAL_BYTES = 50 * 1024 * 1024
CHUNK = 64 * 1024
MB = 1_000_000


def _piece(rng: random.Random) -> bytes:
    """One line: mostly short log lines, some multibyte, some invalid UTF-8, a few longer than 64 KiB."""
    kind = rng.random()
    if kind < 0.80:
        return f"INFO step {rng.randrange(10**6)} done in {rng.random():.3f}s\n".encode()
    if kind < 0.90:
        return f"résumé ✓ 日本語 {rng.randrange(1000)} — ok\n".encode()
    if kind < 0.9998:
        return b"bad \xff\xfe bytes \xc3 truncated \xe2\x82 and a NUL \x00 here\n"
    if kind < 0.9999:
        return b"y" * rng.randrange(100_000, 200_000) + b"\n"
    return "é".encode() * rng.randrange(40_000, 60_000) + b"\n"  # cut at 64 KiB, never inside a character


def mixed_output(size: int) -> bytes:
    """`size` bytes of mixed output: a 4 MiB block of random lines, repeated."""
    rng = random.Random(7)
    block = bytearray()
    while len(block) < 4 * 1024 * 1024:
        block += _piece(rng)
    return (bytes(block) * (size // len(block) + 1))[:size]


def _assemble(data: bytes) -> list[Run]:
    assembler = LineAssembler(output_limit=len(data))
    lines: list[Run] = []
    for start in range(0, len(data), CHUNK):
        lines.extend(assembler.feed(Stream.STDOUT, data[start : start + CHUNK]))
    lines.extend(assembler.flush_all())
    return lines


def _split(data: bytes) -> list[str]:
    return [line.decode("utf-8", "replace") for line in data.split(b"\n")]


def _measure() -> list[Figure]:
    data = mixed_output(TOTAL_BYTES)
    started = time.perf_counter()
    lines = _assemble(data)
    assembler_s = time.perf_counter() - started
    started = time.perf_counter()
    split = _split(data)
    split_s = time.perf_counter() - started
    text = "".join(line if partial else line + "\n" for _, texts, partial in lines for line in texts)
    if text != data.decode("utf-8", "replace").replace("\x00", "\ufffd"):
        raise Failed("LineAssembler output does not rebuild the input text")
    return [
        Figure(
            "LineAssembler (MB/s)",
            f"{len(data) / MB / assembler_s:,.0f}",
            f"{len(data) / MB / split_s:,.0f} split+decode",
        ),
        Figure("slowdown vs split+decode", f"{assembler_s / split_s:.1f}x"),
        Figure("events produced", f"{line_count(lines):,}", f"{len(split):,} split lines"),
    ]


async def run() -> list[Figure]:
    """Run the line-assembly benchmark (CPU-bound, so in a thread) and return its figures."""
    return await asyncio.to_thread(_measure)
