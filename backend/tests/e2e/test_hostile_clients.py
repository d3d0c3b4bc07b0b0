"""A hostile client against the running API (production mode, default limits): every refusal is coded and cheap."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from podrun.settings import GraphQLSettings
from tests.client import GraphQLFailure
from tests.e2e.helpers import submit
from tests.e2e.hostile import RawSocket, client, raw_socket
from tests.e2e.test_api import FORGED, forged_tokens

LIMITS = GraphQLSettings()
EXECUTION = "query($id: ID!) { execution(id: $id) { id status } }"
NODE = """
fragment Node on Execution {
  id status script stdin stdout stderr exitCode signal error createdAt
  owner { id email role createdAt } limits { wallTimeMs cpuTimeMs memoryMiB outputBytes processes }
  runtime { id language version default maxLimits { wallTimeMs cpuTimeMs memoryMiB outputBytes processes } }
}
"""
# The same without the output fields, which cost what they may return (a page of them is heavy by design).
SUMMARY = NODE.replace(" stdout stderr", "")
SLEEPER = "import time\ntime.sleep(55)\n"


def aliases(selection: str, count: int) -> str:
    return "{ " + " ".join(f"a{index}: {selection}" for index in range(count)) + " }"


def nested_types(depth: int) -> str:
    inner = "name"
    for _ in range(depth):
        inner = f"fields {{ type {{ {inner} }} }}"
    return f'{{ __type(name: "Query") {{ {inner} }} }}'


def fragment_bomb(levels: int) -> str:
    """A few hundred bytes that expand to 2^levels fields: each fragment spreads the next one twice."""
    fragments = "".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}\n" for i in range(levels))
    return f"query {{ ...F0 }}\n{fragments}fragment F{levels} on Query {{ __typename }}"


@pytest.mark.parametrize(
    ("query", "limit"),
    [
        pytest.param(aliases("runtimes { id version maxLimits { wallTimeMs } }", 5000), "SIZE", id="5000-aliases"),
        pytest.param(aliases("__typename", 20_000), "SIZE", id="20000-typename-aliases"),
        pytest.param("{ " + "__typename " * 95_000 + "}", "SIZE", id="1-MB-query"),
        pytest.param(aliases("__typename", LIMITS.max_tokens // 3 + 1), "TOKENS", id="tokens"),
        pytest.param(aliases("__typename", LIMITS.max_aliases + 1), "ALIASES", id="aliases"),
        pytest.param(nested_types(LIMITS.max_depth), "DEPTH", id="depth"),
        pytest.param(fragment_bomb(40), "COST", id="fragment-bomb"),
        pytest.param(
            NODE + aliases("executions(first: 100) { edges { node { ...Node } } }", LIMITS.max_aliases),
            "COST",
            id="pages-of-executions",
        ),
        pytest.param(
            NODE + "query($n: Int) {" + aliases("executions(first: $n) { edges { node { ...Node } } }", 20)[1:],
            "COST",
            id="page-size-in-a-variable",
        ),
    ],
)
async def test_oversized_operations_are_refused_before_they_run(guarded: str, query: str, limit: str) -> None:
    user = await client(guarded).register()
    with pytest.raises(GraphQLFailure) as failure:
        await user.execute(query)
    assert failure.value.codes == ["BAD_USER_INPUT"]
    extensions = failure.value.errors[0]["extensions"]
    if limit == "TOKENS":
        assert f"more than {LIMITS.max_tokens} tokens" in failure.value.message
    else:
        assert extensions["limit"] == limit, failure.value.message


async def test_operations_within_the_limits_are_served(guarded: str) -> None:
    user = await client(guarded).register()
    query = SUMMARY + "query($n: Int) {" + aliases("executions(first: $n) { edges { node { ...Node } } }", 5)[1:]
    data = await user.execute(query, {"n": 100})
    assert data == {f"a{index}": {"edges": []} for index in range(5)}
    assert await user.execute(aliases("__typename", LIMITS.max_aliases)) == {
        f"a{index}": "Query" for index in range(LIMITS.max_aliases)
    }


async def test_introspection_and_graphiql_are_off_in_production(guarded: str) -> None:
    user = client(guarded)
    async with httpx.AsyncClient() as http:
        page = await http.get(f"{guarded}/graphql", headers={"accept": "text/html"})
    assert "graphiql" not in page.text.lower()
    with pytest.raises(GraphQLFailure) as failure:
        await user.execute("{ __schema { queryType { name } } }")
    assert set(failure.value.codes) == {"BAD_USER_INPUT"}
    assert "introspection" in failure.value.message
    assert await user.execute("{ __typename }") == {"__typename": "Query"}


@pytest.mark.parametrize("kind", FORGED)
async def test_forged_tokens_are_unauthenticated(guarded: str, kind: str) -> None:
    user = await client(guarded).register()
    with pytest.raises(GraphQLFailure) as failure:
        await user.with_token(forged_tokens(user)[kind]).execute("{ me { id } }")
    assert failure.value.codes == ["UNAUTHENTICATED"]


async def test_another_users_execution_is_indistinguishable_from_a_missing_one(guarded: str) -> None:
    alice = await client(guarded).register()
    mallory = await client(guarded).register()
    execution_id = await submit(alice, "print('mine')\n")
    answers = []
    for target in (execution_id, str(uuid.uuid4())):
        with pytest.raises(GraphQLFailure) as failure:
            await mallory.execute(EXECUTION, {"id": target})
        answers.append(failure.value.errors)
    assert answers[0] == answers[1]
    assert answers[0][0]["extensions"] == {"code": "NOT_FOUND"}


@pytest.mark.parametrize(("signed_in", "code"), [(True, "FORBIDDEN"), (False, "UNAUTHENTICATED")])
async def test_admin_operations_are_refused_to_users(guarded: str, signed_in: bool, code: str) -> None:
    user = await client(guarded).register()
    caller = user if signed_in else user.with_token(None)
    with pytest.raises(GraphQLFailure) as failure:
        await caller.execute("mutation($id: ID!) { unlockUser(id: $id) { id } }", {"id": user.user_id})
    assert failure.value.codes == [code]


async def _started(
    socket: RawSocket, operation_id: str, query: str, variables: dict[str, Any]
) -> dict[str, Any] | None:
    """Subscribe; None if the operation started, else the server's refusal. A refusal is sent before the
    next message is read, so it arrives before the answer to the ping sent right after the subscription."""
    await socket.send({"id": operation_id, "type": "subscribe", "payload": {"query": query, "variables": variables}})
    await socket.send({"type": "ping"})
    refusal = None
    while (message := await socket.receive())["type"] != "pong":
        if message["type"] == "error" and message["id"] == operation_id:
            refusal = message
    return refusal


async def test_500_subscriptions_on_one_socket_are_refused_with_a_code(guarded: str) -> None:
    user = await client(guarded).register()
    execution_id = await submit(user, SLEEPER, limits={"wallTimeMs": 60_000})
    subscribe = {
        "query": "subscription($id: ID!) { executionEvents(id: $id) { __typename } }",
        "variables": {"id": execution_id},
    }
    async with raw_socket(user) as connection:
        socket = RawSocket(connection)
        await socket.send({"type": "connection_init", "payload": {"authorization": f"Bearer {user.token}"}})
        assert (await socket.receive())["type"] == "connection_ack"
        for index in range(500):
            await socket.send({"id": str(index), "type": "subscribe", "payload": subscribe})
        # Refusals are sent before the next message is read: all of them arrive before the answer to this ping.
        await socket.send({"type": "ping"})
        refusals: dict[str, dict[str, Any]] = {}
        while (message := await socket.receive())["type"] != "pong":
            if message["type"] == "error":
                [refusals[message["id"]]] = message["payload"]
        started = 500 - len(refusals)
        assert 1 <= started <= LIMITS.subscriptions_per_socket
        cap = f"at most {LIMITS.subscriptions_per_socket} operations at once on one socket"
        rate = f"at most {LIMITS.operations_per_socket_per_second} operations a second on one socket"
        assert {error["message"] for error in refusals.values()} <= {cap, rate}
        assert all(error["extensions"]["code"] == "RATE_LIMITED" for error in refusals.values())
        assert all(error["extensions"]["retryAfterMs"] > 0 for error in refusals.values())
        # The socket serves on: the subscriptions it took are still there, and it answers.
        await socket.send({"type": "ping"})
        while (await socket.receive())["type"] != "pong":
            pass
    await user.execute("mutation($id: ID!) { cancelExecution(id: $id) { id } }", {"id": execution_id})


async def test_a_socket_reaches_its_cap_of_operations_in_progress(guarded: str) -> None:
    user = await client(guarded).register()
    execution_id = await submit(user, SLEEPER, limits={"wallTimeMs": 60_000})
    query = "subscription($id: ID!) { executionEvents(id: $id) { __typename } }"
    async with raw_socket(user) as connection:
        socket = RawSocket(connection)
        await socket.send({"type": "connection_init", "payload": {"authorization": f"Bearer {user.token}"}})
        assert (await socket.receive())["type"] == "connection_ack"
        started, index = 0, 0
        while True:
            index += 1
            refusal = await _started(socket, str(index), query, {"id": execution_id})
            if refusal is None:
                started += 1
                continue
            [error] = refusal["payload"]
            if "a second" in error["message"]:
                # Over the socket's rate: wait as told, then go on (the cap is what this test is after).
                await _sleep_ms(error["extensions"]["retryAfterMs"])
                continue
            assert error["message"] == f"at most {LIMITS.subscriptions_per_socket} operations at once on one socket"
            assert error["extensions"] == {"code": "RATE_LIMITED", "retryAfterMs": 1000}
            break
        assert started == LIMITS.subscriptions_per_socket
    await user.execute("mutation($id: ID!) { cancelExecution(id: $id) { id } }", {"id": execution_id})


async def _sleep_ms(milliseconds: int) -> None:
    await asyncio.sleep(milliseconds / 1000)


async def test_a_socket_that_never_sends_connection_init_is_closed(guarded: str) -> None:
    async with raw_socket(client(guarded)) as connection:
        assert await RawSocket(connection).closed_with() == 4408


async def test_an_operation_before_connection_init_closes_the_socket(guarded: str) -> None:
    async with raw_socket(client(guarded)) as connection:
        socket = RawSocket(connection)
        await socket.send({"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }"}})
        assert await socket.closed_with() == 4401


async def test_a_message_over_the_size_limit_closes_the_socket(guarded: str) -> None:
    user = await client(guarded).register()
    async with raw_socket(user) as connection:
        socket = RawSocket(connection)
        await socket.send({"type": "connection_init", "payload": {"authorization": f"Bearer {user.token}"}})
        assert (await socket.receive())["type"] == "connection_ack"
        query = "{ __typename }" + " " * LIMITS.max_ws_message_bytes
        await socket.send({"id": "1", "type": "subscribe", "payload": {"query": query}})
        assert await socket.closed_with() == 1009


async def test_after_all_that_the_server_answers_normally(guarded: str) -> None:
    user = await client(guarded).register()
    assert (await user.execute("{ me { id } }"))["me"]["id"] == user.user_id
    execution_id = await submit(user, "print('still here')\n")
    events = [
        data
        async for data in user.subscribe(
            "subscription($id: ID!) { executionEvents(id: $id) { __typename ... on StatusChange { status } } }",
            {"id": execution_id},
        )
    ]
    assert events[-1]["executionEvents"] == {"__typename": "StatusChange", "status": "SUCCEEDED"}
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{guarded}/readyz")).status_code == 200
