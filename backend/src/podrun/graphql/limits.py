"""The GraphQL `Limits` and `LimitsInput` types, generated from the one `Limits` model."""

from __future__ import annotations

import strawberry

from podrun.core.limits import Limits, LimitsRequest


@strawberry.experimental.pydantic.type(model=Limits, all_fields=True, name="Limits")
class LimitsType:
    """Resource limits of a run."""


@strawberry.experimental.pydantic.input(model=LimitsRequest, all_fields=True, name="LimitsInput")
class LimitsInput:
    """Limits to ask for; each omitted one takes the runtime's default, and none may exceed its maximum."""
