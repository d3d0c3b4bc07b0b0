"""The stored policy: one saved before a role existed still has a policy for every role."""

from __future__ import annotations

from podrun.core.roles import Role
from podrun.policy.values import SystemPolicy, default_policy
from podrun.settings import Settings


def test_a_policy_saved_before_contributors_gives_them_the_users_policy() -> None:
    saved = default_policy(Settings()).model_dump(mode="json")
    saved["roles"]["USER"]["active_executions"] = 3
    del saved["roles"]["CONTRIBUTOR"]
    policy = SystemPolicy.model_validate(saved)
    assert policy.for_role(Role.CONTRIBUTOR) == policy.for_role(Role.USER)
    assert policy.for_role(Role.CONTRIBUTOR).active_executions == 3
    assert policy.for_role(Role.ADMIN).active_executions != 3
