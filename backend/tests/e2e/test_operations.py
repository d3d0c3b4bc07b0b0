"""operationsOverview: the live figures admins see without Grafana, from the record in PostgreSQL."""

from __future__ import annotations

import pytest

from tests.client import GraphQLClient, GraphQLFailure
from tests.e2e.helpers import collect, final, submit

OVERVIEW = "{ operationsOverview { queued running runsPerMinute firstOutputP50Ms firstOutputP95Ms errorsLastHour } }"


async def test_an_admin_sees_the_runs_that_just_went_in_the_figures(admin: GraphQLClient, alice: GraphQLClient) -> None:
    execution_id = await submit(alice, "print('figures')")
    assert final(await collect(alice, execution_id))["status"] == "SUCCEEDED"

    figures = (await admin.execute(OVERVIEW))["operationsOverview"]
    # The session's other tests run beside this one: the figures are at least what this test did.
    assert figures["queued"] >= 0
    assert figures["running"] >= 0
    assert figures["runsPerMinute"] >= 0.2  # one run in the last 5 minutes
    assert 0 < figures["firstOutputP50Ms"] <= figures["firstOutputP95Ms"] < 60_000
    assert figures["errorsLastHour"] >= 0


async def test_only_admins_see_the_figures(anonymous: GraphQLClient, alice: GraphQLClient) -> None:
    codes = []
    for client in (anonymous, alice):
        with pytest.raises(GraphQLFailure) as refused:
            await client.execute(OVERVIEW)
        codes.append(refused.value.code)
    assert codes == ["UNAUTHENTICATED", "FORBIDDEN"]
