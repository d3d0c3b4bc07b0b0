"""GraphQL type and resolver for `myQuota`: what you hold of each quota, and your limits."""

from __future__ import annotations

import strawberry
from strawberry.permission import BasePermission

from podrun.executions.service import QuotaView
from podrun.graphql.context import Info
from podrun.graphql.limits import LimitsType
from podrun.graphql.permissions import IsAuthenticated

SIGNED_IN: list[type[BasePermission]] = [IsAuthenticated]


@strawberry.type(name="Quota")
class QuotaType:
    """Your use of each quota now, and each limit: past a limit, submissions are RATE_LIMITED."""

    active_executions: int = strawberry.field(description="Your runs queued or in progress.")
    active_executions_limit: int
    submissions_this_minute: int = strawberry.field(description="Your submissions in the current minute.")
    submissions_per_minute: int
    submissions_reset_in_ms: int = strawberry.field(description="When the current minute's count starts again.")
    queued_executions: int = strawberry.field(description="Runs of all users waiting for a worker.")
    queued_executions_cap: int
    default_limits: LimitsType = strawberry.field(description="What your runs get when they ask for nothing.")
    max_limits: LimitsType = strawberry.field(description="The most your runs may ask for (within the runtime's).")
    script_bytes: int = strawberry.field(description="The largest script (and stdin) accepted, in bytes.")
    storage_bytes: float = strawberry.field(
        description="Bytes your runs hold: scripts, stdin, input files, output and artifacts (a Float: may pass 2^31)."
    )
    storage_limit_bytes: float = strawberry.field(
        description="The most your runs may hold; past it submissions are refused (BAD_USER_INPUT, STORAGE_FULL)."
    )
    retention_days: int = strawberry.field(description="Days an ended run of yours is kept before it is deleted.")

    @classmethod
    def from_view(cls, view: QuotaView, script_bytes: int) -> QuotaType:
        """The GraphQL view of a user's quotas."""
        return cls(
            active_executions=view.usage.active_executions,
            active_executions_limit=view.role.active_executions,
            submissions_this_minute=view.usage.submissions_this_minute,
            submissions_per_minute=view.role.submissions_per_minute,
            submissions_reset_in_ms=view.usage.submissions_reset_in_ms,
            queued_executions=view.usage.queued_executions,
            queued_executions_cap=view.queued_executions_cap,
            default_limits=LimitsType.from_pydantic(view.role.default_limits),
            max_limits=LimitsType.from_pydantic(view.role.max_limits),
            script_bytes=script_bytes,
            storage_bytes=view.storage_bytes,
            storage_limit_bytes=view.role.storage_bytes,
            retention_days=view.role.retention_days,
        )


@strawberry.type
class QuotaQuery:
    """Reading your quotas."""

    @strawberry.field(description="Your quotas and how much of each you use now.", permission_classes=SIGNED_IN)
    async def my_quota(self, info: Info) -> QuotaType:
        container = info.context.container
        async with container.executions() as executions:
            view = await executions.quota(info.context.signed_in_user)
        return QuotaType.from_view(view, container.settings.limits.script_bytes)
