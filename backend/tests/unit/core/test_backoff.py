"""The one backoff: pauses double up to a ceiling and start over after a success."""

from __future__ import annotations

from podrun.core.backoff import Backoff


def test_pauses_double_up_to_the_ceiling_and_start_over_after_a_reset() -> None:
    backoff = Backoff(0.1, 0.5)
    assert [backoff.next() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    backoff.reset()
    assert backoff.next() == 0.1
