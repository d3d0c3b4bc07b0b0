"""Runtimes by id, and a request's limits filled in from the runtime's defaults within its maxima."""

from __future__ import annotations

import pytest

from podrun.core.errors import BadUserInput
from podrun.core.limits import Limits
from podrun.runners.base import RuntimeSpec
from podrun.runners.catalog import RuntimeCatalog, resolve_limits

DEFAULT = Limits(wall_time_ms=10_000, cpu_time_ms=5_000, memory_mib=256, output_bytes=1 << 20, processes=16)
MAXIMUM = Limits(wall_time_ms=60_000, cpu_time_ms=30_000, memory_mib=1024, output_bytes=8 << 20, processes=64)
RUNTIME = RuntimeSpec("python-3.12", "python", "3.12.1", True, max_limits=MAXIMUM, default_limits=DEFAULT)
OLDER = RuntimeSpec("python-3.11", "python", "3.11.7", False, max_limits=MAXIMUM, default_limits=DEFAULT)


def test_nothing_asked_gives_the_defaults() -> None:
    assert resolve_limits(RUNTIME, {}) == DEFAULT
    assert resolve_limits(RUNTIME, dict.fromkeys(Limits.model_fields)) == DEFAULT


def test_asked_limits_replace_their_defaults_only() -> None:
    assert resolve_limits(RUNTIME, {"memory_mib": 1024, "wall_time_ms": 1}) == DEFAULT.model_copy(
        update={"memory_mib": 1024, "wall_time_ms": 1}
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("memory_mib", 1025, "limits.memoryMiB must be between 1 and 1024"),
        ("wall_time_ms", 0, "limits.wallTimeMs must be between 1 and 60000"),
        ("processes", -1, "limits.processes must be between 1 and 64"),
    ],
)
def test_limits_outside_one_to_the_maximum_are_refused_by_their_client_name(
    field: str, value: int, message: str
) -> None:
    with pytest.raises(BadUserInput, match=message):
        resolve_limits(RUNTIME, {field: value})


def test_the_catalog_finds_runtimes_and_answers_null_with_the_default() -> None:
    catalog = RuntimeCatalog([OLDER, RUNTIME], "isolation")
    assert (catalog.get(None), catalog.get("python-3.11"), catalog.find("python-2.7")) == (RUNTIME, OLDER, None)
    with pytest.raises(BadUserInput, match=r"unknown runtime 'python-2\.7'; available: python-3\.11, python-3\.12"):
        catalog.get("python-2.7")
