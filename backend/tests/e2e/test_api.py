"""The API's edges: accounts and tokens, who sees what, input validation, idempotency, pagination, health."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from tests.client import EVENTS, SUBMIT, GraphQLClient, GraphQLFailure
from tests.conftest import TEST_ENV
from tests.e2e.helpers import collect, connection_init, lines, submit

ME = "query { me { id email role } }"
LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken user { id } } }"
REFRESH = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken user { id email } } }"
REGISTER = "mutation($e: String!, $p: String!) { register(email: $e, password: $p) { user { id } } }"
EXECUTION = "query($id: ID!) { execution(id: $id) { id status } }"
CANCEL = "mutation($id: ID!) { cancelExecution(id: $id) { id } }"
SEND_INPUT = 'mutation($id: ID!) { sendInput(id: $id, data: "x") }'
PAGE = """
query($first: Int, $after: String, $status: ExecutionStatus) {
  executions(first: $first, after: $after, status: $status) {
    edges { cursor node { id status } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
PASSWORD = "correct horse battery"
SECRET = TEST_ENV["PODRUN_JWT_SECRET"]


@pytest.fixture(scope="module")
async def idle(podrun: str) -> GraphQLClient:
    """A user shared by the tests that never create runs: registering one per test is slow (password hashing)."""
    return await GraphQLClient(podrun).register()


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def forged_tokens(client: GraphQLClient) -> dict[str, str]:
    """Tokens that must never be accepted as access tokens, made for `client`'s user."""
    assert client.user_id is not None
    assert client.refresh_token is not None
    user_id, refresh_token = client.user_id, client.refresh_token
    now = int(time.time())
    claims = {"sub": user_id, "typ": "access", "iat": now, "exp": now + 600}
    return {
        "other-secret": jwt.encode(claims, "another-secret-" + "y" * 40, algorithm="HS256"),
        "alg-none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "expired": jwt.encode({**claims, "iat": now - 1200, "exp": now - 600}, SECRET, algorithm="HS256"),
        "refresh-as-access": refresh_token,
        "unknown-user": jwt.encode({**claims, "sub": str(uuid.uuid4())}, SECRET, algorithm="HS256"),
        "garbage": "not.a.token",
    }


FORGED = ["other-secret", "alg-none", "expired", "refresh-as-access", "unknown-user", "garbage"]


async def test_register_login_refresh_and_me(anonymous: GraphQLClient) -> None:
    email = f"round-trip-{uuid.uuid4().hex[:8]}@example.com"
    user = await anonymous.register(email, PASSWORD)
    me = (await user.execute(ME))["me"]
    assert me == {"id": user.user_id, "email": email, "role": "USER"}
    login = (await anonymous.execute(LOGIN, {"e": email, "p": PASSWORD}))["login"]
    assert login["user"]["id"] == user.user_id
    assert (await anonymous.with_token(login["accessToken"]).execute(ME))["me"] == me
    refreshed = (await anonymous.execute(REFRESH, {"t": login["refreshToken"]}))["refreshToken"]
    assert refreshed["user"] == {"id": user.user_id, "email": email}
    assert (await anonymous.with_token(refreshed["accessToken"]).execute(ME))["me"] == me
    assert (await anonymous.execute(ME))["me"] is None


async def test_an_access_token_is_not_a_refresh_token(alice: GraphQLClient) -> None:
    with pytest.raises(GraphQLFailure) as failure:
        await alice.execute(REFRESH, {"t": alice.token})
    assert failure.value.code == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    ("mutation", "password", "code"),
    [
        pytest.param(LOGIN, "wrong password here", "UNAUTHENTICATED", id="wrong-password"),
        pytest.param(REGISTER, PASSWORD, "CONFLICT", id="duplicate-email"),
    ],
)
async def test_account_errors(anonymous: GraphQLClient, mutation: str, password: str, code: str) -> None:
    email = f"taken-{uuid.uuid4().hex[:8]}@example.com"
    await anonymous.register(email, PASSWORD)
    with pytest.raises(GraphQLFailure) as failure:
        await anonymous.execute(mutation, {"e": email, "p": password})
    assert failure.value.code == code


@pytest.mark.parametrize("email", ["nobody-{}@example.com", "NOT-AN-EMAIL-{}"])
async def test_login_as_an_unknown_user_is_unauthenticated(anonymous: GraphQLClient, email: str) -> None:
    with pytest.raises(GraphQLFailure) as failure:
        await anonymous.execute(LOGIN, {"e": email.format(uuid.uuid4().hex[:8]), "p": PASSWORD})
    assert failure.value.code == "UNAUTHENTICATED"


@pytest.mark.parametrize("email", ["short-{}@example.com", "not-an-email-{}"])
async def test_registering_with_a_short_password_or_a_bad_email_is_bad_input(
    anonymous: GraphQLClient, email: str
) -> None:
    password = "short" if email.startswith("short") else PASSWORD
    with pytest.raises(GraphQLFailure) as failure:
        await anonymous.execute(REGISTER, {"e": email.format(uuid.uuid4().hex[:8]), "p": password})
    assert failure.value.code == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    ("password", "hint"),
    [
        ("password", "top-10 common password"),
        ("password123", "very common password"),
        ("qwertyuiop", "common password"),
        ("{user}{user}", "easy to guess"),
    ],
)
async def test_a_guessable_password_is_refused_naming_the_field(
    anonymous: GraphQLClient, password: str, hint: str
) -> None:
    user = f"guess{uuid.uuid4().hex[:8]}"
    with pytest.raises(GraphQLFailure) as failure:
        await anonymous.execute(REGISTER, {"e": f"{user}@example.com", "p": password.format(user=user)})
    assert failure.value.code == "BAD_USER_INPUT"
    assert failure.value.errors[0]["extensions"]["field"] == "password"
    assert failure.value.message.startswith("password is too easy to guess")
    assert hint in failure.value.message.lower()


@pytest.mark.parametrize("kind", FORGED)
async def test_forged_tokens_are_refused_over_http(idle: GraphQLClient, kind: str) -> None:
    forged = idle.with_token(forged_tokens(idle)[kind])
    for query in (ME, "query { executions { edges { cursor } } }"):
        with pytest.raises(GraphQLFailure) as failure:
            await forged.execute(query)
        assert failure.value.code == "UNAUTHENTICATED"


def test_a_non_bearer_authorization_header_is_refused(podrun: str) -> None:
    response = httpx.post(f"{podrun}/graphql", json={"query": ME}, headers={"authorization": "Basic YTpi"})
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("kind", FORGED)
async def test_forged_tokens_close_the_websocket_with_4403(idle: GraphQLClient, kind: str) -> None:
    token = forged_tokens(idle)[kind]
    assert await connection_init(idle, {"authorization": f"Bearer {token}"}) == (None, 4403)
    assert await connection_init(idle, {"authorization": f"Bearer {idle.token}"}) == ("connection_ack", None)


async def test_a_subscription_without_a_token_is_unauthenticated(alice: GraphQLClient) -> None:
    execution_id = await submit(alice, "print('hi')\n")
    with pytest.raises(GraphQLFailure) as failure:
        await collect(alice.with_token(None), execution_id)
    assert failure.value.code == "UNAUTHENTICATED"
    assert lines(await collect(alice, execution_id)) == ["hi"]


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(EXECUTION, id="execution"),
        pytest.param(CANCEL, id="cancelExecution"),
        pytest.param(SEND_INPUT, id="sendInput"),
        pytest.param(EVENTS, id="executionEvents"),
    ],
)
async def test_another_users_execution_is_not_found(alice: GraphQLClient, bob: GraphQLClient, operation: str) -> None:
    execution_id = await submit(alice, "import sys\nprint(sys.stdin.read())\n")
    attempt = collect(bob, execution_id) if operation is EVENTS else bob.execute(operation, {"id": execution_id})
    with pytest.raises(GraphQLFailure) as failure:
        await attempt
    assert failure.value.code == "NOT_FOUND"
    # Bob's attempts changed nothing: Alice's run still waits for her stdin.
    assert (await alice.execute(EXECUTION, {"id": execution_id}))["execution"]["status"] != "CANCELLED"
    await alice.execute('mutation($id: ID!) { sendInput(id: $id, data: "mine", eof: true) }', {"id": execution_id})
    assert lines(await collect(alice, execution_id)) == ["mine"]


@pytest.mark.parametrize(
    "bad_id", ["not-a-uuid", "", "e6e0e139-cfa3-4eb7-af45-eb09cf0cc84b", "01a20392-32f9-7117-b3de-2503ab94037c'--"]
)
async def test_a_malformed_or_unknown_id_is_not_found(idle: GraphQLClient, bad_id: str) -> None:
    with pytest.raises(GraphQLFailure) as failure:
        await idle.execute(EXECUTION, {"id": bad_id})
    assert failure.value.code == "NOT_FOUND"


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        pytest.param({"script": "#" * (64 * 1024 + 1)}, "script", id="script-too-big"),
        pytest.param({"script": "print(1)", "stdin": "x" * (64 * 1024 + 1)}, "stdin", id="stdin-too-big"),
        pytest.param({"script": "print(1)\x00"}, "script", id="script-nul"),
        pytest.param({"script": "print(1)", "stdin": "a\x00b"}, "stdin", id="stdin-nul"),
        pytest.param({"script": "print(1)", "runtime": "cobol-85"}, "runtime", id="unknown-runtime"),
    ],
)
async def test_bad_submissions_are_bad_user_input(idle: GraphQLClient, fields: dict[str, Any], named: str) -> None:
    with pytest.raises(GraphQLFailure) as failure:
        await idle.execute(SUBMIT, {"input": fields})
    assert failure.value.code == "BAD_USER_INPUT"
    assert named in failure.value.message
    assert (await idle.execute(PAGE, {}))["executions"]["edges"] == []


async def test_a_script_of_exactly_64_kib_is_accepted(alice: GraphQLClient) -> None:
    script = "print('ok')\n" + "#" * (64 * 1024 - len("print('ok')\n"))
    assert lines(await collect(alice, await submit(alice, script))) == ["ok"]


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        pytest.param("query { me { id ", {}, id="syntax-error"),
        pytest.param("query { me { id favouriteColour } }", {}, id="unknown-field"),
        pytest.param("query { execution { id } }", {}, id="missing-argument"),
        pytest.param(EXECUTION, {}, id="missing-variable"),
        pytest.param(PAGE, {"first": "two"}, id="wrong-variable-type"),
    ],
)
async def test_malformed_requests_are_bad_user_input(
    idle: GraphQLClient, query: str, variables: dict[str, Any]
) -> None:
    with pytest.raises(GraphQLFailure) as failure:
        await idle.execute(query, variables)
    assert failure.value.codes == ["BAD_USER_INPUT"] * len(failure.value.codes)


async def test_the_same_idempotency_key_runs_once(alice: GraphQLClient) -> None:
    key = f"key-{uuid.uuid4().hex}"
    script = "import time\nprint('once')\ntime.sleep(0.2)\n"
    first = await submit(alice, script, idempotencyKey=key)
    second = await submit(alice, script, idempotencyKey=key)
    assert first == second
    events = await collect(alice, first)
    assert lines(events) == ["once"]
    assert [e["status"] for e in events if e["kind"] == "status"] == ["STARTING", "RUNNING", "SUCCEEDED"]
    assert await submit(alice, script, idempotencyKey=key) == first  # also after the run ended
    edges = (await alice.execute(PAGE, {}))["executions"]["edges"]
    assert [edge["node"]["id"] for edge in edges] == [first]


@pytest.mark.parametrize("change", [{"script": "print('other')\n"}, {"stdin": "different"}])
async def test_the_same_idempotency_key_for_something_else_is_a_conflict(
    alice: GraphQLClient, change: dict[str, str]
) -> None:
    key = f"key-{uuid.uuid4().hex}"
    first = await submit(alice, "print('first')\n", idempotencyKey=key)
    with pytest.raises(GraphQLFailure) as failure:
        await alice.execute(SUBMIT, {"input": {"script": "print('first')\n", **change, "idempotencyKey": key}})
    assert failure.value.code == "CONFLICT"
    assert lines(await collect(alice, first)) == ["first"]


async def test_idempotency_keys_are_per_user(alice: GraphQLClient, bob: GraphQLClient) -> None:
    key = f"key-{uuid.uuid4().hex}"
    assert await submit(alice, "print(1)\n", idempotencyKey=key) != await submit(bob, "print(2)\n", idempotencyKey=key)


async def test_pagination_newest_first_with_a_status_filter(alice: GraphQLClient, bob: GraphQLClient) -> None:
    submitted = []
    for index in range(5):
        execution_id = await submit(alice, f"import sys\nsys.exit({index % 2})\n")
        await collect(alice, execution_id)
        submitted.append(execution_id)
    await submit(bob, "print('bob')\n")

    seen: list[str] = []
    after = None
    pages = []
    while True:
        page = (await alice.execute(PAGE, {"first": 2, "after": after}))["executions"]
        pages.append(len(page["edges"]))
        seen.extend(edge["node"]["id"] for edge in page["edges"])
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == [2, 2, 1]
    assert seen == submitted[::-1]

    failed = (await alice.execute(PAGE, {"status": "FAILED"}))["executions"]
    assert [(edge["node"]["id"], edge["node"]["status"]) for edge in failed["edges"]] == [
        (submitted[3], "FAILED"),
        (submitted[1], "FAILED"),
    ]
    assert failed["pageInfo"] == {"hasNextPage": False, "endCursor": failed["edges"][-1]["cursor"]}
    bobs = (await bob.execute(PAGE, {}))["executions"]["edges"]
    assert len(bobs) == 1
    assert bobs[0]["node"]["id"] not in submitted


@pytest.mark.parametrize(
    "variables",
    [
        pytest.param({"after": "garbage!"}, id="garbage-cursor"),
        pytest.param(
            {"after": base64.urlsafe_b64encode(b"user:" + str(uuid.uuid4()).encode()).decode()}, id="wrong-kind"
        ),
        pytest.param({"first": 0}, id="first-0"),
        pytest.param({"first": 101}, id="first-101"),
    ],
)
async def test_bad_page_arguments_are_bad_user_input(idle: GraphQLClient, variables: dict[str, Any]) -> None:
    with pytest.raises(GraphQLFailure) as failure:
        await idle.execute(PAGE, variables)
    assert failure.value.code == "BAD_USER_INPUT"


def test_health_and_readiness(podrun: str) -> None:
    healthz = httpx.get(f"{podrun}/healthz")
    assert (healthz.status_code, healthz.text) == (200, "ok")
    readyz = httpx.get(f"{podrun}/readyz")
    assert (readyz.status_code, readyz.json()) == (200, {"postgres": "ok", "redis": "ok"})


def test_graphiql_is_served_in_development(podrun: str) -> None:
    response = httpx.get(f"{podrun}/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


async def test_queries_work_over_http_get(alice: GraphQLClient, podrun: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{podrun}/graphql", params={"query": ME}, headers={"authorization": f"Bearer {alice.token}"}
        )
    assert response.status_code == 200
    assert response.json()["data"]["me"]["id"] == alice.user_id
