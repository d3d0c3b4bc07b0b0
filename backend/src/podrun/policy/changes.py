"""How an admin's change is applied to the policy: only the fields given change, and the result is checked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from podrun.core.errors import BadUserInput
from podrun.core.limits import Limits
from podrun.core.roles import Role
from podrun.policy.values import RolePolicy, SystemPolicy

Model = TypeVar("Model", RolePolicy, SystemPolicy)


@dataclass(frozen=True, slots=True)
class RoleChange:
    """Changes to one role's policy; limits by field name, None keeping a value."""

    role: Role
    default_limits: Mapping[str, int | None] = field(default_factory=dict)
    max_limits: Mapping[str, int | None] = field(default_factory=dict)
    active_executions: int | None = None
    submissions_per_minute: int | None = None
    storage_mib: int | None = None
    retention_days: int | None = None


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """Changes to the policy; None (or no entry for a role) keeps what is there."""

    roles: list[RoleChange] = field(default_factory=list)
    queued_executions_cap: int | None = None
    registration_open: bool | None = None


def changed_policy(current: SystemPolicy, change: PolicyChange, ceiling: Limits) -> SystemPolicy:
    """`current` with `change` applied; BAD_USER_INPUT for an invalid result or limits above `ceiling`.

    The ceiling is the server's own maximum (settings.limits.maximum): runners are set up for it, so an
    admin may lower limits below it and raise them back, never past it.
    """
    roles = dict(current.roles)
    for role_change in change.roles:
        roles[role_change.role] = _changed_role(roles[role_change.role], role_change, ceiling)
    values: dict[str, Any] = {"roles": roles}
    if change.queued_executions_cap is not None:
        values["queued_executions_cap"] = change.queued_executions_cap
    if change.registration_open is not None:
        values["registration_open"] = change.registration_open
    return _validated(SystemPolicy, {**current.model_dump(), **values}, "")


def _changed_role(current: RolePolicy, change: RoleChange, ceiling: Limits) -> RolePolicy:
    prefix = f"roles.{change.role.value}."
    values: dict[str, Any] = {
        "default_limits": _changed_limits(current.default_limits, change.default_limits),
        "max_limits": _changed_limits(current.max_limits, change.max_limits),
        "active_executions": _given(change.active_executions, current.active_executions),
        "submissions_per_minute": _given(change.submissions_per_minute, current.submissions_per_minute),
        "storage_mib": _given(change.storage_mib, current.storage_mib),
        "retention_days": _given(change.retention_days, current.retention_days),
    }
    for name, value in values["default_limits"].items():
        if value < 1:
            raise BadUserInput(f"{prefix}defaultLimits.{Limits.field_label(name)} must be at least 1")
    for name, value in values["max_limits"].items():
        limit = getattr(ceiling, name)
        if not 1 <= value <= limit:
            raise BadUserInput(f"{prefix}maxLimits.{Limits.field_label(name)} must be between 1 and {limit}")
    return _validated(RolePolicy, values, prefix)


def _given(value: int | None, current: int) -> int:
    return current if value is None else value


def _changed_limits(current: Limits, changes: Mapping[str, int | None]) -> dict[str, int]:
    return {**current.model_dump(), **{name: value for name, value in changes.items() if value is not None}}


def _validated(model: type[Model], values: dict[str, Any], prefix: str) -> Model:
    try:
        return model.model_validate(values)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(to_camel(str(part)) for part in problem["loc"])
        message = str(problem["msg"]).removeprefix("Value error, ")
        raise BadUserInput(f"{prefix}{where}: {message}" if where else f"{prefix.rstrip('.')}: {message}") from error
