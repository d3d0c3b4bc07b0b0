"""The one Limits model and what is derived from it."""

from __future__ import annotations

from podrun.core.limits import Limits, LimitsRequest


def test_the_request_has_every_limit_optional_under_the_same_client_names() -> None:
    assert list(LimitsRequest.model_fields) == list(Limits.model_fields)
    assert LimitsRequest().model_dump() == dict.fromkeys(Limits.model_fields)
    assert [info.alias for info in LimitsRequest.model_fields.values()] == [
        info.alias for info in Limits.model_fields.values()
    ]
    assert LimitsRequest.model_validate({"memoryMiB": 64}).model_dump(exclude_none=True) == {"memory_mib": 64}


def test_client_names_are_the_aliases() -> None:
    assert [Limits.field_label(name) for name in Limits.model_fields] == [
        "wallTimeMs", "cpuTimeMs", "memoryMiB", "outputBytes", "processes",
    ]  # fmt: skip
