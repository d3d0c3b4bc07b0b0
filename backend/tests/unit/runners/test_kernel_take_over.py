"""A kernel taken over from a dead worker: the cells it ran are skipped, a cell it may still run is interrupted."""

from __future__ import annotations

import asyncio

import pytest

from podrun.core.limits import Limits
from podrun.runners import kernel as kernel_module
from podrun.runners import protocol
from podrun.runners.base import ArtifactCaps, SandboxResult, SandboxUsage
from podrun.runners.kernel import KernelSandbox

LIMITS = Limits(wall_time_ms=10_000, cpu_time_ms=5_000, memory_mib=256, output_bytes=1 << 20, processes=16)
INTERRUPT = protocol.encode_frame(protocol.INTERRUPT)


def out(text: str) -> bytes:
    return protocol.encode_frame(protocol.STDOUT, text.encode())


def exit_frame(code: int = 0) -> bytes:
    record = {"exit_code": code, "signal": None, "wall_ms": 1, "cpu_ms": 1, "peak_rss_kib": 1, "error": None}
    return protocol.encode_frame(protocol.EXIT, record)


class FakeKernel:
    """A kernel pod's log as a re-attaching worker reads it: its lines so far, then what comes (or nothing)."""

    def __init__(self, lines: list[bytes], *, answers_interrupt: list[bytes] | None = None) -> None:
        self.lines: asyncio.Queue[bytes] = asyncio.Queue()
        for line in lines:
            self.lines.put_nowait(line)
        self.answers_interrupt = answers_interrupt or []
        self.sent: list[bytes] = []

    async def send(self, frame: bytes) -> None:
        self.sent.append(frame)
        if frame == INTERRUPT:
            for line in self.answers_interrupt:
                self.lines.put_nowait(line)

    async def read_line(self) -> bytes:
        return await self.lines.get()  # a live kernel's log: the next line may never come

    async def kill(self) -> None:
        self.lines.put_nowait(b"")

    async def wait(self) -> SandboxResult:
        return SandboxResult(exit_code=None, signal=None, limit_exceeded=None, usage=SandboxUsage())


@pytest.fixture(autouse=True)
def short_drain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel_module, "TAKE_OVER_DRAIN_S", 0.2)


async def test_an_idle_kernel_goes_on_after_the_cells_it_ran_without_an_interrupt() -> None:
    channel = FakeKernel([out("a"), exit_frame(), exit_frame(1), out("b"), exit_frame()])
    kernel = KernelSandbox(channel, LIMITS)
    assert await kernel.take_over(3, busy=False)
    assert (kernel.cells, channel.sent, channel.lines.empty()) == (3, [], True)
    await kernel.cell("print(x)", ArtifactCaps(count=0, total_bytes=0))
    assert protocol.Cell.from_json(protocol.parse_json_payload(protocol.parse_frame(channel.sent[0])[1])).number == 4


@pytest.mark.parametrize(
    ("log_after", "answer", "cells"),
    [
        ([out("half")], [out("more"), exit_frame(130)], 2),  # the dead worker's cell runs: interrupted, skipped
        ([out("all"), exit_frame()], [], 2),  # it had ended, unrecorded: its lines skipped, the interrupt ignored
        ([], [], 1),  # it never reached the kernel: nothing comes
    ],
    ids=["running", "ended-unrecorded", "never-sent"],
)
async def test_a_busy_kernel_is_interrupted_and_its_last_cell_skipped(
    log_after: list[bytes], answer: list[bytes], cells: int
) -> None:
    channel = FakeKernel([out("a"), exit_frame(), *log_after], answers_interrupt=answer)
    kernel = KernelSandbox(channel, LIMITS)
    assert await kernel.take_over(1, busy=True)
    assert (kernel.cells, channel.sent, channel.lines.empty()) == (cells, [INTERRUPT], True)


async def test_lines_of_earlier_cells_gone_from_the_log_do_not_hold_the_kernel_up() -> None:
    channel = FakeKernel([out("c"), exit_frame()])  # cells 1 and 2 were rotated out of the pod's log
    kernel = KernelSandbox(channel, LIMITS)
    assert await kernel.take_over(3, busy=False)
    assert (kernel.cells, channel.lines.empty()) == (3, True)


@pytest.mark.parametrize("busy", [False, True])
async def test_a_kernel_that_ended_meanwhile_is_not_taken_over(busy: bool) -> None:
    channel = FakeKernel([exit_frame(), b""])
    kernel = KernelSandbox(channel, LIMITS)
    assert not await kernel.take_over(2 - busy, busy=busy)
    assert not kernel.alive
