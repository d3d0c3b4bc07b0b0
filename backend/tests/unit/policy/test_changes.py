"""An admin's change to the policy: only what is given changes, and nothing invalid gets through."""

from __future__ import annotations

import pytest

from podrun.core.errors import BadUserInput
from podrun.core.roles import Role
from podrun.policy.changes import PolicyChange, RoleChange, changed_policy
from podrun.policy.values import default_policy
from podrun.settings import Settings

SETTINGS = Settings()
CEILING = SETTINGS.limits.maximum
BEFORE = default_policy(SETTINGS)


def test_the_defaults_are_the_environments_for_every_role() -> None:
    for role in Role:
        policy = BEFORE.for_role(role)
        assert (policy.default_limits, policy.max_limits) == (SETTINGS.limits.default, SETTINGS.limits.maximum)
        assert policy.active_executions == SETTINGS.quotas.active_executions_per_user
    assert (BEFORE.queued_executions_cap, BEFORE.registration_open) == (1000, True)


def test_only_what_is_given_changes() -> None:
    change = PolicyChange(
        roles=[RoleChange(Role.USER, default_limits={"wall_time_ms": 2000, "memory_mib": None}, active_executions=2)],
        registration_open=False,
    )
    after = changed_policy(BEFORE, change, CEILING)
    user = after.for_role(Role.USER)
    assert user.default_limits == SETTINGS.limits.default.model_copy(update={"wall_time_ms": 2000})
    assert (user.max_limits, user.active_executions) == (SETTINGS.limits.maximum, 2)
    assert user.submissions_per_minute == SETTINGS.quotas.submissions_per_minute
    assert after.for_role(Role.ADMIN) == BEFORE.for_role(Role.ADMIN)
    assert (after.registration_open, after.queued_executions_cap) == (False, BEFORE.queued_executions_cap)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            PolicyChange(roles=[RoleChange(Role.USER, max_limits={"processes": CEILING.processes + 1})]),
            f"roles.USER.maxLimits.processes must be between 1 and {CEILING.processes}",
        ),
        (
            PolicyChange(roles=[RoleChange(Role.ADMIN, default_limits={"cpu_time_ms": 0})]),
            "roles.ADMIN.defaultLimits.cpuTimeMs must be at least 1",
        ),
        (
            PolicyChange(roles=[RoleChange(Role.USER, max_limits={"memory_mib": 128})]),
            "roles.USER: default memoryMiB must not exceed the maximum",
        ),
        (
            PolicyChange(roles=[RoleChange(Role.USER, submissions_per_minute=0)]),
            "roles.USER.submissionsPerMinute: Input should be greater than or equal to 1",
        ),
        (PolicyChange(queued_executions_cap=0), "queuedExecutionsCap: Input should be greater than or equal to 1"),
    ],
    ids=["above-ceiling", "zero-default", "default-above-max", "no-submissions", "no-queue"],
)
def test_invalid_changes_are_refused_by_their_client_names(change: PolicyChange, message: str) -> None:
    with pytest.raises(BadUserInput) as error:
        changed_policy(BEFORE, change, CEILING)
    assert error.value.message == message
