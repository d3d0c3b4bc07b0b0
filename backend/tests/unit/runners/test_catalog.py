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


# A role's policy (from the system settings): smaller defaults and maxima than the runtime's.
ROLE_DEFAULT = DEFAULT.model_copy(update={"wall_time_ms": 2_000})
ROLE_MAXIMUM = MAXIMUM.model_copy(update={"wall_time_ms": 5_000, "memory_mib": 512})


def resolve(requested: dict[str, int | None], default: Limits = DEFAULT, maximum: Limits = MAXIMUM) -> Limits:
    return resolve_limits(RUNTIME, requested, default=default, maximum=maximum)


def test_nothing_asked_gives_the_defaults() -> None:
    assert resolve({}) == DEFAULT
    assert resolve(dict.fromkeys(Limits.model_fields)) == DEFAULT


def test_asked_limits_replace_their_defaults_only() -> None:
    assert resolve({"memory_mib": 1024, "wall_time_ms": 1}) == DEFAULT.model_copy(
        update={"memory_mib": 1024, "wall_time_ms": 1}
    )


def test_a_roles_defaults_and_maxima_apply_within_the_runtimes() -> None:
    assert resolve({}, ROLE_DEFAULT, ROLE_MAXIMUM) == ROLE_DEFAULT
    with pytest.raises(BadUserInput, match=r"limits\.memoryMiB must be between 1 and 512"):
        resolve({"memory_mib": 1024}, ROLE_DEFAULT, ROLE_MAXIMUM)
    # A role may not get past the runtime's own maximum, whatever its policy says.
    above = MAXIMUM.model_copy(update={"processes": 1000})
    assert resolve({}, above, above).processes == MAXIMUM.processes


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
        resolve({field: value})


def test_the_catalog_finds_runtimes_and_answers_null_with_the_default() -> None:
    catalog = RuntimeCatalog([OLDER, RUNTIME], "isolation")
    assert (catalog.get(None), catalog.get("python-3.11"), catalog.find("python-2.7")) == (RUNTIME, OLDER, None)
    with pytest.raises(BadUserInput, match=r"unknown runtime 'python-2\.7'; available: python-3\.11, python-3\.12"):
        catalog.get("python-2.7")
