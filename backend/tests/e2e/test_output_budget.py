"""One request returns at most the output budget (twice the largest output limit by default): past it the
output fields answer BAD_USER_INPUT with reason OUTPUT_BUDGET, and a page of outputs costs what it may weigh."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from podrun.settings import Settings
from tests.client import GraphQLClient, GraphQLFailure
from tests.e2e.helpers import submit, wait_for_status

# `first` written out: a variable counts as the largest page in the operation's cost.
PAGE = "{{ executions(first: {first}) {{ edges {{ node {{ id stdout stderr }} }} }} }}"
# Just under the largest output limit (8 MiB), in long lines.
AT_THE_CAP = "import sys\nsys.stdout.write(('x' * 1023 + '\\n') * 8190)\n"
AT_THE_CAP_BYTES = 1024 * 8190
LIVE = "import sys, time\nprint('out', flush=True)\nprint('err', file=sys.stderr, flush=True)\ntime.sleep(30)\n"


async def post(client: GraphQLClient, query: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as http:
        return await http.post(client.http_url, json={"query": query}, headers=client.headers)


async def test_three_runs_at_the_largest_output_limit_do_not_come_back_in_one_request(
    alice: GraphQLClient, settings: Settings
) -> None:
    assert settings.output_budget_bytes == 2 * settings.limits.maximum.output_bytes
    for _ in range(3):
        execution_id = await submit(alice, AT_THE_CAP, limits={"outputBytes": settings.limits.maximum.output_bytes})
        assert (await wait_for_status(alice, execution_id, "SUCCEEDED", "FAILED", timeout=60))["status"] == "SUCCEEDED"

    response = await post(alice, PAGE.format(first=3))
    # Before the budget: 25 MB in one response.
    assert len(response.content) < 64 * 1024
    body = response.json()
    assert body["data"] is None
    assert {(error["extensions"]["code"], error["extensions"].get("reason")) for error in body["errors"]} == {
        ("BAD_USER_INPUT", "OUTPUT_BUDGET")
    }
    assert "stream the output with executionEvents" in body["errors"][0]["message"]

    # Within the budget, the output is all there.
    [edge] = (await alice.execute(PAGE.format(first=1)))["executions"]["edges"]
    assert (len(edge["node"]["stdout"]), edge["node"]["stderr"]) == (AT_THE_CAP_BYTES, "")


async def test_a_page_of_outputs_heavier_than_the_cost_limit_is_refused_before_it_runs(alice: GraphQLClient) -> None:
    with pytest.raises(GraphQLFailure) as refused:
        await alice.execute(PAGE.format(first=100))
    assert refused.value.errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "limit": "COST"}


async def test_a_live_runs_output_is_read_from_its_log(alice: GraphQLClient) -> None:
    execution_id = await submit(alice, LIVE)
    await wait_for_status(alice, execution_id, "RUNNING", timeout=60)
    query = "query($id: ID!) { execution(id: $id) { status stdout stderr } }"
    for _ in range(200):
        current = (await alice.execute(query, {"id": execution_id}))["execution"]
        if current["stdout"] and current["stderr"]:
            break
        await asyncio.sleep(0.05)
    assert current == {"status": "RUNNING", "stdout": "out\n", "stderr": "err\n"}
    await alice.execute("mutation($id: ID!) { cancelExecution(id: $id) { status } }", {"id": execution_id})
