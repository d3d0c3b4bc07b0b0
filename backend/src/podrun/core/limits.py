"""The five limits of a run, defined once.

`Limits` is the one model: runners enforce it, the executions table stores it, settings give its
defaults and maxima, and the GraphQL `Limits` and `LimitsInput` types are generated from it (field
names and descriptions included), as is `LimitsRequest`, the same fields each optional.
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.alias_generators import to_camel


class LimitKind(enum.StrEnum):
    """Which limit ended a run."""

    WALL_TIME = "WALL_TIME"
    CPU_TIME = "CPU_TIME"
    MEMORY = "MEMORY"
    OUTPUT = "OUTPUT"
    PROCESSES = "PROCESSES"


class Limits(BaseModel):
    """Resource limits of one run."""

    # Aliases are the GraphQL (and JSON) names; settings and code use the field names.
    model_config = ConfigDict(frozen=True, populate_by_name=True, alias_generator=to_camel)

    wall_time_ms: int = Field(description="Wall-clock time from the script's start, in milliseconds.")
    cpu_time_ms: int = Field(description="CPU time of all the script's processes, in milliseconds.")
    memory_mib: int = Field(alias="memoryMiB", description="Memory of all the script's processes, in MiB.")
    output_bytes: int = Field(description="Bytes of stdout and stderr together; the rest is cut.")
    processes: int = Field(description="Processes (and threads) the script may run at once.")

    @classmethod
    def field_label(cls, name: str) -> str:
        """The name clients know a field by ("memoryMiB" for memory_mib)."""
        return cls.model_fields[name].alias or name


def _all_optional(model: type[BaseModel], name: str) -> type[BaseModel]:
    fields: dict[str, Any] = {
        field: (info.annotation | None, Field(None, alias=info.alias, description=info.description))  # type: ignore[operator]
        for field, info in model.model_fields.items()
    }
    return create_model(name, __config__=ConfigDict(frozen=True, populate_by_name=True), **fields)


# What a client may ask for: any of the limits, each omitted one taking the runtime's default.
LimitsRequest = _all_optional(Limits, "LimitsRequest")
