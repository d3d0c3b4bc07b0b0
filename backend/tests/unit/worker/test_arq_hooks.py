"""The parts of arq's Worker that PodrunWorker (worker/main.py) overrides or leans on are the ones it was written
against: a new arq release that changes any of them fails here, loudly, before a worker misbehaves."""

from __future__ import annotations

import hashlib
import inspect
import re

import arq.version
import pytest
from arq.worker import Worker

# sha256 (first 16 hex digits) of each method's source in arq 0.28.0.
KNOWN_SOURCES = {
    "main": "45ca1591c9717466",  # loops over _poll_iteration
    "_poll_iteration": "f8d39d823a0a59f2",  # replaced: runs are claimed fairly, not read in order of arrival
    "start_jobs": "b45797cfa40bed7f",  # called with the claimed job ids
    "_release_sem_dec_counter_on_complete": "0ed101482e942c33",  # extended: a freed slot wakes the poll
    "heart_beat": "2e9959bea66dc551",
    "close": "5bcc9cb356680829",
}
# State of arq's Worker that PodrunWorker reads or resets (_recount_slots, _start_claimed_runs).
ATTRIBUTES = ("job_counter", "tasks", "sem", "allow_pick_jobs", "max_jobs")


def test_arq_is_the_pinned_release() -> None:
    assert arq.version.VERSION == "0.28.0"


@pytest.mark.parametrize(("method", "fingerprint"), sorted(KNOWN_SOURCES.items()))
def test_an_overridden_or_relied_on_method_is_unchanged(method: str, fingerprint: str) -> None:
    source = inspect.getsource(getattr(Worker, method))
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == fingerprint, (
        f"arq's Worker.{method} changed: review PodrunWorker (worker/main.py) against it, then update this test"
    )


@pytest.mark.parametrize("attribute", ATTRIBUTES)
def test_the_worker_state_podrun_uses_is_set_by_arq(attribute: str) -> None:
    assert re.search(rf"self\.{attribute}(: [^=]+)? = ", inspect.getsource(Worker.__init__))
