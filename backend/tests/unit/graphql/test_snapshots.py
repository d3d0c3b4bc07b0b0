"""A status change is loaded once for every subscriber, and a failed load is tried again."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from podrun.graphql.snapshots import StatusSnapshots


async def test_concurrent_subscribers_share_one_load() -> None:
    snapshots: StatusSnapshots[str] = StatusSnapshots()
    execution_id = uuid.uuid4()
    loads = 0

    async def load() -> str:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.01)
        return "RUNNING"

    results = await asyncio.gather(*(snapshots.get(execution_id, 2, load) for _ in range(100)))
    assert results == ["RUNNING"] * 100
    assert loads == 1
    assert await snapshots.get(execution_id, 3, load) == "RUNNING"
    assert loads == 2


async def test_a_failed_load_is_tried_again() -> None:
    snapshots: StatusSnapshots[str] = StatusSnapshots()
    execution_id = uuid.uuid4()
    outcomes = [ConnectionError("database away"), "SUCCEEDED"]

    async def load() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with pytest.raises(ConnectionError):
        await snapshots.get(execution_id, 5, load)
    assert await snapshots.get(execution_id, 5, load) == "SUCCEEDED"


async def test_only_the_newest_changes_are_remembered() -> None:
    snapshots: StatusSnapshots[int] = StatusSnapshots(keep=2)
    execution_id = uuid.uuid4()
    for seq in range(5):
        await snapshots.get(execution_id, seq, lambda seq=seq: asyncio.sleep(0, seq))  # type: ignore[misc]
    assert list(snapshots.loads) == [(execution_id, 3), (execution_id, 4)]
