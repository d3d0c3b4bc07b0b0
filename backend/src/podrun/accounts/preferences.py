"""A user's settings, kept with their account so every browser they sign in from shows the same."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from podrun.core.errors import BadUserInput

TAB_SIZES = (2, 4, 8)


class Theme(enum.StrEnum):
    """Light, dark, or whatever the device prefers."""

    SYSTEM = "SYSTEM"
    LIGHT = "LIGHT"
    DARK = "DARK"


class Preferences(BaseModel):
    """Theme and editor settings; every field has a default, so a new account has them all."""

    model_config = ConfigDict(frozen=True)

    theme: Theme = Theme.SYSTEM
    font_size: int = Field(default=14, ge=8, le=32)
    tab_size: int = 4
    line_wrapping: bool = False

    @field_validator("tab_size")
    @classmethod
    def _known_tab_size(cls, value: int) -> int:
        if value not in TAB_SIZES:
            raise ValueError(f"must be one of {', '.join(map(str, TAB_SIZES))}")
        return value

    @classmethod
    def stored(cls, values: dict[str, Any]) -> Preferences:
        """The preferences as stored (fields added since fall back to their defaults)."""
        return cls.model_validate(values)

    def changed(self, changes: dict[str, Any]) -> Preferences:
        """These preferences with `changes` (field name -> value; None keeps the field); BAD_USER_INPUT if invalid."""
        given = {name: value for name, value in changes.items() if value is not None}
        try:
            return Preferences.model_validate({**self.model_dump(), **given})
        except ValidationError as error:
            problem = error.errors()[0]
            field = ".".join(to_camel(str(part)) for part in problem["loc"])
            message = str(problem["msg"]).removeprefix("Value error, ")
            raise BadUserInput(f"settings.{field}: {message}") from error
