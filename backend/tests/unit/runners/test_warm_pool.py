"""The warm pool's bookkeeping, with stand-in sandboxes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from podrun.runners import warm_pool
from podrun.runners.warm_pool import WarmPool


@dataclass
class Standin:
    number: int
    up: bool = True
    discarded: bool = False

    def waiting(self) -> bool:
        return self.up and not self.discarded

    async def discard(self) -> None:
        self.discarded = True


class Launcher:
    def __init__(self, *, fail: bool = False) -> None:
        self.launched: list[Standin] = []
        self.fail = fail

    async def __call__(self, runtime_id: str) -> Standin | None:
        await asyncio.sleep(0)
        if self.fail:
            return None
        self.launched.append(Standin(len(self.launched)))
        return self.launched[-1]


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_warm_fills_to_size_and_take_hands_out_each_sandbox_once() -> None:
    launch = Launcher()
    pool = WarmPool(2, 60, launch)
    pool.warm("py")
    await settle()
    assert pool.sizes() == {"py": 2}
    first, second = pool.take("py"), pool.take("py")
    assert first is not None
    assert second is not None
    assert first is not second
    assert pool.take("py") is None  # empty until the refill
    await pool.close()


async def test_take_skips_sandboxes_that_died_while_waiting() -> None:
    launch = Launcher()
    pool = WarmPool(2, 60, launch)
    pool.warm("py")
    await settle()
    launch.launched[0].up = False
    taken = pool.take("py")
    assert taken is launch.launched[1]
    await settle()
    assert launch.launched[0].discarded
    await pool.close()


async def test_a_take_refills_after_a_short_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(warm_pool, "REFILL_DELAY_S", 0.01)
    launch = Launcher()
    pool = WarmPool(1, 60, launch)
    assert pool.take("py") is None  # a runtime's first run starts cold and warms it
    await asyncio.sleep(0.05)
    assert pool.sizes() == {"py": 1}
    await pool.close()


async def test_no_growth_while_the_host_is_short_and_none_at_size_zero() -> None:
    launch = Launcher()
    short = WarmPool(2, 60, launch, may_grow=lambda: False)
    short.warm("py")
    off = WarmPool(0, 60, launch)
    off.warm("py")
    await settle()
    assert launch.launched == []
    assert off.take("py") is None
    await short.close()
    await off.close()


async def test_a_failing_launch_is_not_retried_at_once() -> None:
    launch = Launcher(fail=True)
    pool = WarmPool(2, 60, launch)
    pool.warm("py")
    await settle()
    pool.warm("py")
    await settle()
    assert pool.sizes() == {"py": 0}
    assert pool.runtimes["py"].retry_at > 0
    await pool.close()


async def test_close_discards_what_waits_and_stops_filling() -> None:
    launch = Launcher()
    pool = WarmPool(2, 60, launch)
    pool.warm("py")
    await settle()
    await pool.close()
    assert all(sandbox.discarded for sandbox in launch.launched)
    pool.warm("py")
    await settle()
    assert len(launch.launched) == 2


class SlowLauncher(Launcher):
    """Launches that take a while, counting how many run at once."""

    def __init__(self) -> None:
        super().__init__()
        self.running = 0
        self.most_at_once = 0

    async def __call__(self, runtime_id: str) -> Standin | None:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        await asyncio.sleep(0.05)
        self.running -= 1
        return await super().__call__(runtime_id)


async def test_runs_arriving_faster_than_a_launch_grow_the_pool_up_to_its_maximum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(warm_pool, "REFILL_DELAY_S", 0.0)
    launch = SlowLauncher()
    pool = WarmPool(1, 60, launch, max_size=4)
    for _ in range(6):  # back-to-back runs, each faster than a replacement starts
        pool.take("py")
        await asyncio.sleep(0.01)
    for _ in range(100):
        if pool.sizes()["py"] >= 4:
            break
        await asyncio.sleep(0.01)
    assert pool.sizes() == {"py": 4}
    assert launch.most_at_once > 1  # replacements start side by side, not one after another
    await settle()
    assert pool.sizes() == {"py": 4}  # never past the maximum
    await pool.close()


async def test_the_extra_sandboxes_stop_once_runs_slow_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(warm_pool, "REFILL_DELAY_S", 0.0)
    launch = SlowLauncher()
    pool = WarmPool(1, 60, launch, max_size=4)
    for _ in range(6):
        pool.take("py")
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    assert pool.sizes() == {"py": 4}
    monkeypatch.setattr(warm_pool, "DEMAND_WINDOW_S", 0.0)  # the burst is now long past
    await pool.trim()
    assert pool.sizes() == {"py": 1}
    assert sum(sandbox.discarded for sandbox in launch.launched) == 3
    await pool.close()
