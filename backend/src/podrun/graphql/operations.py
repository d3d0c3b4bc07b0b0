"""The operations overview for admins: live figures of the installation (executions/overview.py)."""

from __future__ import annotations

import strawberry

from podrun.executions.overview import Overview, overview
from podrun.graphql.context import Info
from podrun.graphql.permissions import IsAdmin


@strawberry.type(name="OperationsOverview")
class OperationsOverviewType:
    """How the installation is doing now, for small installs without a dashboard."""

    queued: int = strawberry.field(description="Runs waiting for a worker.")
    running: int = strawberry.field(description="Runs a worker holds (starting or running).")
    runs_per_minute: float = strawberry.field(description="Runs that ended per minute, over the last 5 minutes.")
    first_output_p50_ms: int | None = strawberry.field(
        description="Median time from submission to the first output line of runs that ended in the last 15 "
        "minutes; null without such runs."
    )
    first_output_p95_ms: int | None = strawberry.field(description="The same, 95th percentile.")
    errors_last_hour: int = strawberry.field(description="Runs that ended with ERROR (the platform failed them).")

    @classmethod
    def from_overview(cls, figures: Overview) -> OperationsOverviewType:
        """The GraphQL view of the figures."""
        return cls(
            queued=figures.queued,
            running=figures.running,
            runs_per_minute=figures.runs_per_minute,
            first_output_p50_ms=figures.first_output_p50_ms,
            first_output_p95_ms=figures.first_output_p95_ms,
            errors_last_hour=figures.errors_last_hour,
        )


@strawberry.type
class OperationsQuery:
    """What admins read of the installation's health."""

    @strawberry.field(description="Live figures: queue, runs in progress, throughput, latency, errors (admins).",
                      permission_classes=[IsAdmin])  # fmt: skip
    async def operations_overview(self, info: Info) -> OperationsOverviewType:
        async with info.context.container.db.get_session() as session:
            return OperationsOverviewType.from_overview(await overview(session))
