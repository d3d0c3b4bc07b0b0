"""A socket's operations per second: a token bucket of one second's worth."""

from __future__ import annotations

import pytest

from podrun.graphql import sockets
from podrun.graphql.sockets import OperationRate


def test_a_burst_of_one_seconds_worth_then_one_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(sockets.time, "monotonic", lambda: now[0])
    rate = OperationRate(per_second=4)
    assert [rate.take() for _ in range(5)] == [0, 0, 0, 0, 250]
    now[0] += 0.125
    assert rate.take() == 125
    now[0] += 0.125
    assert rate.take() == 0
    now[0] += 60
    assert [rate.take() for _ in range(5)] == [0, 0, 0, 0, 250]
