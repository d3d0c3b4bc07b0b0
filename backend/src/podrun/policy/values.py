"""The policy an admin can change at run time: limits and quotas per role, the queue cap, registration.

Its defaults come from the environment (settings.py); what an admin saves replaces them until saved again.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from podrun.core.limits import Limits
from podrun.core.roles import Role
from podrun.settings import Settings


class RolePolicy(BaseModel):
    """What runs of one role get by default, the most they may ask for, and how many they may start."""

    model_config = ConfigDict(frozen=True)

    default_limits: Limits
    max_limits: Limits
    active_executions: int = Field(ge=1, le=10_000)
    submissions_per_minute: int = Field(ge=1, le=100_000)
    storage_mib: int = Field(ge=1, le=16 * 1024 * 1024)
    retention_days: int = Field(ge=1, le=36_500)

    @property
    def storage_bytes(self) -> int:
        """The storage cap in bytes."""
        return self.storage_mib * 1024 * 1024

    @model_validator(mode="after")
    def _default_within_maximum(self) -> RolePolicy:
        for name in Limits.model_fields:
            if getattr(self.default_limits, name) > getattr(self.max_limits, name):
                raise ValueError(f"default {Limits.field_label(name)} must not exceed the maximum")
        return self


class SystemPolicy(BaseModel):
    """Everything `systemSettings` shows and `updateSystemSettings` changes."""

    model_config = ConfigDict(frozen=True)

    roles: dict[Role, RolePolicy]
    queued_executions_cap: int = Field(ge=1, le=1_000_000)
    registration_open: bool

    @model_validator(mode="before")
    @classmethod
    def _every_role(cls, data: Any) -> Any:
        """A policy saved before a role existed gives that role USER's values."""
        if isinstance(data, dict) and isinstance(roles := data.get("roles"), dict) and Role.USER.value in roles:
            data = {**data, "roles": {**{role.value: roles[Role.USER.value] for role in Role}, **roles}}
        return data

    def for_role(self, role: Role) -> RolePolicy:
        """The policy of one role."""
        return self.roles[role]


def default_policy(settings: Settings) -> SystemPolicy:
    """The policy before any admin changed it: the environment's limits and quotas, the same for every role."""
    role = RolePolicy(
        default_limits=settings.limits.default,
        max_limits=settings.limits.maximum,
        active_executions=settings.quotas.active_executions_per_user,
        submissions_per_minute=settings.quotas.submissions_per_minute,
        storage_mib=settings.quotas.storage_mib_per_user,
        retention_days=settings.quotas.retention_days,
    )
    return SystemPolicy(
        roles=dict.fromkeys(Role, role),
        queued_executions_cap=settings.quotas.queued_executions_cap,
        registration_open=settings.auth.registration_open,
    )


def stored_policy(saved: dict[str, Any], defaults: SystemPolicy) -> SystemPolicy:
    """A policy as saved, with what was added to the policy since taken from the environment's defaults."""
    default_roles = defaults.model_dump(mode="json")["roles"]
    roles = {role: {**default_roles[role], **values} for role, values in saved.get("roles", {}).items()}
    return SystemPolicy.model_validate({**defaults.model_dump(mode="json"), **saved, "roles": roles})
