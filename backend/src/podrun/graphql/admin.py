"""GraphQL types and resolvers only admins may use: accounts and the system settings.

An admin also sees and cancels anyone's executions through the ordinary execution fields.
"""

from __future__ import annotations

from uuid import UUID

import strawberry

from podrun.accounts.models import Role
from podrun.accounts.service import CURSOR_KIND, UserPage
from podrun.core import pages
from podrun.executions.repository import RunCounts
from podrun.graphql.accounts import ADMIN, UserType
from podrun.graphql.connections import PageInfo
from podrun.graphql.context import Info
from podrun.graphql.limits import LimitsInput, LimitsType
from podrun.policy.changes import PolicyChange, RoleChange, changed_policy
from podrun.policy.values import SystemPolicy


@strawberry.type
class UserEdge:
    """An account in a page, with the cursor that points at it."""

    cursor: str
    node: UserType


@strawberry.type
class UserConnection:
    """A page of accounts, newest first."""

    edges: list[UserEdge]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: UserPage, run_counts: dict[UUID, RunCounts]) -> UserConnection:
        """The GraphQL view of a page, with each user's run counts."""
        edges = [
            UserEdge(
                cursor=pages.encode_cursor(CURSOR_KIND, user.id), node=UserType.from_model(user, run_counts[user.id])
            )
            for user in page.users
        ]
        return cls(
            edges=edges,
            page_info=PageInfo.after(edges, page.has_next_page),
        )


@strawberry.type(name="RoleSettings")
class RoleSettingsType:
    """What runs of one role get by default, the most they may ask for, and how many they may start."""

    role: Role
    default_limits: LimitsType
    max_limits: LimitsType
    active_executions: int = strawberry.field(description="Runs queued or in progress at once, per user.")
    submissions_per_minute: int = strawberry.field(description="Submissions per minute, per user.")
    storage_mi_b: int = strawberry.field(
        name="storageMiB", description="What one user's runs may hold; past it their submissions are refused."
    )
    retention_days: int = strawberry.field(description="Days an ended run is kept before it is deleted.")


@strawberry.type(name="SystemSettings")
class SystemSettingsType:
    """The policy every submission is checked against; a change applies to the next submission."""

    roles: list[RoleSettingsType]
    queued_executions_cap: int = strawberry.field(
        description="Runs waiting for a worker, all users together; past it submissions are RATE_LIMITED."
    )
    registration_open: bool = strawberry.field(description="Whether anyone may create an account.")
    limits_ceiling: LimitsType = strawberry.field(
        description="The server's own maximum (from its environment): no role's maxLimits may exceed it."
    )
    version: int = strawberry.field(description="Grows with every change (0: never changed).")

    @classmethod
    def from_policy(cls, policy: SystemPolicy, version: int, info: Info) -> SystemSettingsType:
        """The GraphQL view of the policy."""
        return cls(
            roles=[
                RoleSettingsType(
                    role=role,
                    default_limits=LimitsType.from_pydantic(values.default_limits),
                    max_limits=LimitsType.from_pydantic(values.max_limits),
                    active_executions=values.active_executions,
                    submissions_per_minute=values.submissions_per_minute,
                    storage_mi_b=values.storage_mib,
                    retention_days=values.retention_days,
                )
                for role, values in policy.roles.items()
            ],
            queued_executions_cap=policy.queued_executions_cap,
            registration_open=policy.registration_open,
            limits_ceiling=LimitsType.from_pydantic(info.context.container.settings.limits.maximum),
            version=version,
        )


@strawberry.input
class RoleSettingsInput:
    """Changes to one role's settings; each omitted field (and limit) stays as it is."""

    role: Role
    default_limits: LimitsInput | None = None
    max_limits: LimitsInput | None = None
    active_executions: int | None = None
    submissions_per_minute: int | None = None
    storage_mi_b: int | None = strawberry.field(default=None, name="storageMiB")
    retention_days: int | None = None

    def change(self) -> RoleChange:
        """What the policy is asked to change for this role."""
        return RoleChange(
            role=self.role,
            default_limits=self.default_limits.to_pydantic().model_dump() if self.default_limits else {},
            max_limits=self.max_limits.to_pydantic().model_dump() if self.max_limits else {},
            active_executions=self.active_executions,
            submissions_per_minute=self.submissions_per_minute,
            storage_mib=self.storage_mi_b,
            retention_days=self.retention_days,
        )


@strawberry.input
class SystemSettingsInput:
    """Changes to the system settings; each omitted field stays as it is."""

    roles: list[RoleSettingsInput] | None = None
    queued_executions_cap: int | None = None
    registration_open: bool | None = None


@strawberry.type
class AdminQuery:
    """What admins read."""

    @strawberry.field(description="Accounts whose email contains `search`, newest first.", permission_classes=ADMIN)
    async def users(
        self, info: Info, first: int | None = 20, after: str | None = None, search: str | None = None
    ) -> UserConnection:
        async with info.context.container.users() as users:
            page = await users.page(20 if first is None else first, after, search)
        async with info.context.container.executions() as executions:
            run_counts = await executions.repository.run_counts([user.id for user in page.users])
        return UserConnection.from_page(page, run_counts)

    @strawberry.field(description="The limits, quotas and registration policy.", permission_classes=ADMIN)
    async def system_settings(self, info: Info) -> SystemSettingsType:
        version, policy = await info.context.container.policy.versioned()
        return SystemSettingsType.from_policy(policy, version, info)


@strawberry.type
class AdminMutation:
    """What admins change."""

    @strawberry.mutation(description="Give an account a role (not your own).", permission_classes=ADMIN)
    async def set_user_role(self, info: Info, id: strawberry.ID, role: Role) -> UserType:
        async with info.context.container.users() as users:
            return UserType.from_model(await users.set_role(info.context.signed_in_user, id, role))

    @strawberry.mutation(
        description="Disable an account (its tokens and open sockets stop working at once) or enable it.",
        permission_classes=ADMIN,
    )
    async def set_user_disabled(self, info: Info, id: strawberry.ID, disabled: bool) -> UserType:
        async with info.context.container.users() as users:
            return UserType.from_model(await users.set_disabled(info.context.signed_in_user, id, disabled=disabled))

    @strawberry.mutation(
        description="Set a new password for an account; all its sessions end, and it signs in with this one.",
        permission_classes=ADMIN,
    )
    async def reset_user_password(self, info: Info, id: strawberry.ID, password: str) -> UserType:
        async with info.context.container.users() as users:
            return UserType.from_model(await users.reset_password(info.context.signed_in_user, id, password))

    @strawberry.mutation(
        description="Change the system settings; the next submission (in every API process) follows them.",
        permission_classes=ADMIN,
    )
    async def update_system_settings(self, info: Info, input: SystemSettingsInput) -> SystemSettingsType:
        store = info.context.container.policy
        change = PolicyChange(
            roles=[role.change() for role in input.roles or []],
            queued_executions_cap=input.queued_executions_cap,
            registration_open=input.registration_open,
        )
        policy = changed_policy(await store.current(), change, info.context.container.settings.limits.maximum)
        version = await store.save(policy)
        return SystemSettingsType.from_policy(policy, version, info)
