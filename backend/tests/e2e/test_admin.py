"""Admin controls over the real API: accounts, anyone's runs, and system settings that the next submission follows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportConnectionFailed
from websockets.exceptions import ConnectionClosed

from podrun.settings import Settings
from tests.client import EVENTS, SUBMIT, GraphQLClient, GraphQLFailure
from tests.e2e.conftest import SYSTEM_SETTINGS, UPDATE_SYSTEM_SETTINGS
from tests.e2e.helpers import SET_ROLE, connection_init, submit, wait_for_status

PASSWORD = "correct horse battery"
USERS = """
query($first: Int, $after: String, $search: String) {
  users(first: $first, after: $after, search: $search) {
    edges { cursor node { id email role disabled } } pageInfo { hasNextPage endCursor }
  }
}
"""
SET_DISABLED = "mutation($id: ID!, $d: Boolean!) { setUserDisabled(id: $id, disabled: $d) { id disabled } }"
RESET_PASSWORD = "mutation($id: ID!, $p: String!) { resetUserPassword(id: $id, password: $p) { id } }"
EXECUTIONS = """
query($userId: ID) { executions(first: 50, userId: $userId) { edges { node { id owner { id email } } } } }
"""
CANCEL = "mutation($id: ID!) { cancelExecution(id: $id) { status } }"
ME = "{ me { id email role } }"
REFRESH = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }"
REGISTER = "mutation($e: String!, $p: String!) { register(email: $e, password: $p) { accessToken } }"

ADMIN_OPERATIONS = [
    pytest.param(USERS, {"first": 5}, id="users"),
    pytest.param(SYSTEM_SETTINGS, {}, id="systemSettings"),
    pytest.param(UPDATE_SYSTEM_SETTINGS, {"input": {"registrationOpen": False}}, id="updateSystemSettings"),
    pytest.param(SET_ROLE, {"id": str(uuid.uuid4()), "role": "ADMIN"}, id="setUserRole"),
    pytest.param(SET_DISABLED, {"id": str(uuid.uuid4()), "d": True}, id="setUserDisabled"),
    pytest.param(RESET_PASSWORD, {"id": str(uuid.uuid4()), "p": "a new password!"}, id="resetUserPassword"),
]


ACCOUNT_OPERATIONS = [
    (SET_ROLE, {"role": "ADMIN"}),
    (SET_DISABLED, {"d": True}),
    (RESET_PASSWORD, {"p": "a new password!"}),
]


async def drain(events: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    """Everything a subscription still sends, until it completes."""
    return [event async for event in events]


def email_of() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


@pytest.mark.parametrize(("operation", "variables"), ADMIN_OPERATIONS)
async def test_admin_operations_are_forbidden_to_users_and_need_credentials(
    alice: GraphQLClient, anonymous: GraphQLClient, operation: str, variables: dict[str, Any]
) -> None:
    for client, code in ((alice, "FORBIDDEN"), (anonymous, "UNAUTHENTICATED")):
        with pytest.raises(GraphQLFailure) as failure:
            await client.execute(operation, variables)
        assert failure.value.code == code


async def test_admins_list_and_search_accounts_page_by_page(admin: GraphQLClient, anonymous: GraphQLClient) -> None:
    tag = uuid.uuid4().hex[:8]
    emails = [f"list-{tag}-{n}@example.com" for n in range(3)]
    for email in emails:
        await anonymous.register(email)
    seen: list[str] = []
    after = None
    while True:
        page = (await admin.execute(USERS, {"first": 2, "after": after, "search": f"LIST-{tag}"}))["users"]
        seen.extend(edge["node"]["email"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == emails[::-1]
    # The search is a plain substring: LIKE's wildcards match only themselves.
    assert (await admin.execute(USERS, {"first": 5, "search": f"list-{tag}-%"}))["users"]["edges"] == []


async def test_a_role_given_by_an_admin_ends_the_users_sign_ins_and_applies_to_the_next(
    admin: GraphQLClient, anonymous: GraphQLClient
) -> None:
    email = email_of()
    bob = await anonymous.register(email, PASSWORD)
    assert (await admin.execute(SET_ROLE, {"id": bob.user_id, "role": "ADMIN"}))["setUserRole"]["role"] == "ADMIN"
    for operation, variables, client in ((ME, {}, bob), (REFRESH, {"t": bob.refresh_token}, anonymous)):
        with pytest.raises(GraphQLFailure) as failure:
            await client.execute(operation, variables)
        assert failure.value.code == "UNAUTHENTICATED"
    bob = await anonymous.login(email, PASSWORD)
    assert (await bob.execute(SYSTEM_SETTINGS))["systemSettings"]["roles"]
    await admin.execute(SET_ROLE, {"id": bob.user_id, "role": "USER"})
    bob = await anonymous.login(email, PASSWORD)
    with pytest.raises(GraphQLFailure) as failure:
        await bob.execute(SYSTEM_SETTINGS)
    assert failure.value.code == "FORBIDDEN"


async def test_an_admin_cannot_demote_or_disable_themselves(admin: GraphQLClient) -> None:
    me = (await admin.execute(ME))["me"]
    for operation, variables in ((SET_ROLE, {"role": "USER"}), (SET_DISABLED, {"d": True})):
        with pytest.raises(GraphQLFailure) as failure:
            await admin.execute(operation, {"id": me["id"], **variables})
        assert failure.value.code == "CONFLICT"
    assert (await admin.execute(ME))["me"]["role"] == "ADMIN"


@pytest.mark.parametrize("user_id", [str(uuid.uuid4()), "not-an-id"], ids=["missing", "malformed"])
async def test_admin_operations_on_a_missing_account_are_not_found(admin: GraphQLClient, user_id: str) -> None:
    for operation, variables in ACCOUNT_OPERATIONS:
        with pytest.raises(GraphQLFailure) as failure:
            await admin.execute(operation, {**variables, "id": user_id})
        assert (failure.value.code, failure.value.message) == ("NOT_FOUND", "user not found")


async def test_a_disabled_users_token_and_open_socket_stop_working_at_once(
    admin: GraphQLClient, anonymous: GraphQLClient
) -> None:
    email = email_of()
    user = await anonymous.register(email, PASSWORD)
    execution_id = await submit(user, "import time\nprint('started', flush=True)\ntime.sleep(8)\n")
    async with Client(transport=user.transport()) as session:
        events = session.subscribe(GraphQLRequest(EVENTS, variable_values={"id": execution_id, "after": 0}))
        received = [await anext(events)]
        while not any(
            line["text"] == "started" for event in received for line in event["executionEvents"].get("lines", [])
        ):
            received.append(await anext(events))
        await admin.execute(SET_DISABLED, {"id": user.user_id, "d": True})
        # The socket is closed by the server: the subscription ends with the connection, not with the run.
        with pytest.raises(TransportConnectionFailed) as closed:
            await drain(events)
        assert isinstance(closed.value.__cause__, ConnectionClosed)
        assert closed.value.__cause__.rcvd is not None
        assert (closed.value.__cause__.rcvd.code, closed.value.__cause__.rcvd.reason) == (4403, "the sign-in ended")
    for operation, variables, client in (
        (ME, {}, user),
        (REFRESH, {"t": user.refresh_token}, anonymous),
        (
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
            {"e": email, "p": PASSWORD},
            anonymous,
        ),
    ):
        with pytest.raises(GraphQLFailure) as failure:
            await client.execute(operation, variables)
        assert failure.value.code == "UNAUTHENTICATED"
    assert await connection_init(user, {"authorization": f"Bearer {user.token}"}) == (None, 4403)

    # Enabled again: a fresh sign-in works; the tokens from before stay revoked.
    await admin.execute(SET_DISABLED, {"id": user.user_id, "d": False})
    again = await anonymous.login(email, PASSWORD)
    assert (await again.execute(ME))["me"]["email"] == email
    with pytest.raises(GraphQLFailure) as failure:
        await user.execute(ME)
    assert (failure.value.code, failure.value.message) == ("UNAUTHENTICATED", "this token was revoked; sign in again")


async def test_a_password_reset_ends_every_session_and_the_new_password_signs_in(
    admin: GraphQLClient, anonymous: GraphQLClient
) -> None:
    email = email_of()
    user = await anonymous.register(email, PASSWORD)
    await admin.execute(RESET_PASSWORD, {"id": user.user_id, "p": "the admin's choice"})
    with pytest.raises(GraphQLFailure) as failure:
        await user.execute(ME)
    assert failure.value.code == "UNAUTHENTICATED"
    with pytest.raises(GraphQLFailure) as failure:
        await anonymous.login(email, PASSWORD)
    assert failure.value.code == "UNAUTHENTICATED"
    assert (await (await anonymous.login(email, "the admin's choice")).execute(ME))["me"]["email"] == email
    with pytest.raises(GraphQLFailure) as failure:
        await admin.execute(RESET_PASSWORD, {"id": user.user_id, "p": "short"})
    assert failure.value.code == "BAD_USER_INPUT"


async def test_admins_list_one_users_runs_and_cancel_anyones(
    admin: GraphQLClient, alice: GraphQLClient, bob: GraphQLClient
) -> None:
    bobs = await submit(bob, "import time\ntime.sleep(30)\n")
    alices = await submit(alice, "pass\n")
    listed = (await admin.execute(EXECUTIONS, {"userId": bob.user_id}))["executions"]["edges"]
    assert [(edge["node"]["id"], edge["node"]["owner"]["id"]) for edge in listed] == [(bobs, bob.user_id)]
    everyone = {edge["node"]["id"] for edge in (await admin.execute(EXECUTIONS, {}))["executions"]["edges"]}
    assert {bobs, alices} <= everyone
    # A user may name only themselves.
    assert [
        e["node"]["id"] for e in (await bob.execute(EXECUTIONS, {"userId": bob.user_id}))["executions"]["edges"]
    ] == [bobs]
    with pytest.raises(GraphQLFailure) as failure:
        await bob.execute(EXECUTIONS, {"userId": alice.user_id})
    assert failure.value.code == "FORBIDDEN"
    assert (await admin.execute(CANCEL, {"id": bobs}))["cancelExecution"]["status"] == "CANCELLED"
    assert (await wait_for_status(bob, bobs, "CANCELLED"))["status"] == "CANCELLED"


async def test_system_settings_changed_by_an_admin_apply_to_the_next_submission(
    admin: GraphQLClient, alice: GraphQLClient, settings: Settings, system_settings: dict[str, Any]
) -> None:
    submitted = (await alice.execute(SUBMIT, {"input": {"script": "pass"}}))["submitExecution"]
    assert submitted["limits"]["wallTimeMs"] == settings.limits.default.wall_time_ms
    # Ended before the policy allows one run at a time: the submissions below are the only ones in progress.
    await wait_for_status(alice, submitted["id"], "SUCCEEDED", timeout=60)
    changed = (
        await admin.execute(
            UPDATE_SYSTEM_SETTINGS,
            {
                "input": {
                    "roles": [
                        {
                            "role": "USER",
                            "defaultLimits": {"wallTimeMs": 20_000},
                            "maxLimits": {"wallTimeMs": 30_000},
                            "activeExecutions": 1,
                        }
                    ]
                }
            },
        )
    )["updateSystemSettings"]
    assert changed["version"] > system_settings["version"]
    user_role = next(role for role in changed["roles"] if role["role"] == "USER")
    assert (user_role["defaultLimits"]["wallTimeMs"], user_role["maxLimits"]["wallTimeMs"]) == (20_000, 30_000)
    admin_role = next(role for role in changed["roles"] if role["role"] == "ADMIN")
    assert admin_role == next(role for role in system_settings["roles"] if role["role"] == "ADMIN")

    # The next submission follows the new policy: its default, its maximum, one run at a time.
    # It sleeps past its wall limit, so it still holds the one slot while the next ones are tried.
    first = await alice.execute(SUBMIT, {"input": {"script": "import time\ntime.sleep(60)\n"}})
    assert first["submitExecution"]["limits"]["wallTimeMs"] == 20_000
    with pytest.raises(GraphQLFailure) as failure:
        await alice.execute(SUBMIT, {"input": {"script": "pass", "limits": {"wallTimeMs": 30_001}}})
    assert (failure.value.code, failure.value.message) == (
        "BAD_USER_INPUT",
        "limits.wallTimeMs must be between 1 and 30000",
    )
    with pytest.raises(GraphQLFailure) as failure:
        await alice.execute(SUBMIT, {"input": {"script": "pass"}})
    assert failure.value.code == "RATE_LIMITED"
    await alice.execute(CANCEL, {"id": first["submitExecution"]["id"]})
    # The runtimes a user is offered say so too; without credentials they show the runtime's own.
    runtimes = "{ runtimes { defaultLimits { wallTimeMs } maxLimits { wallTimeMs } } }"
    offered = (await alice.execute(runtimes))["runtimes"]
    assert {(r["defaultLimits"]["wallTimeMs"], r["maxLimits"]["wallTimeMs"]) for r in offered} == {(20_000, 30_000)}
    anonymous = alice.with_token(None)
    public = (await anonymous.execute(runtimes))["runtimes"]
    assert {(r["defaultLimits"]["wallTimeMs"], r["maxLimits"]["wallTimeMs"]) for r in public} == {
        (settings.limits.default.wall_time_ms, settings.limits.maximum.wall_time_ms)
    }
    # Admins keep their own policy.
    assert (await submit_limits(admin))["wallTimeMs"] == settings.limits.default.wall_time_ms


async def submit_limits(client: GraphQLClient) -> dict[str, int]:
    data = await client.execute(SUBMIT, {"input": {"script": "pass"}})
    return data["submitExecution"]["limits"]  # type: ignore[no-any-return]


async def test_registration_closed_by_an_admin_refuses_new_accounts(
    admin: GraphQLClient, anonymous: GraphQLClient, system_settings: dict[str, Any]
) -> None:
    await admin.execute(UPDATE_SYSTEM_SETTINGS, {"input": {"registrationOpen": False}})
    with pytest.raises(GraphQLFailure) as failure:
        await anonymous.execute(REGISTER, {"e": email_of(), "p": PASSWORD})
    assert failure.value.code == "FORBIDDEN"
    await admin.execute(UPDATE_SYSTEM_SETTINGS, {"input": {"registrationOpen": True}})
    assert (await anonymous.execute(REGISTER, {"e": email_of(), "p": PASSWORD}))["register"]["accessToken"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"roles": [{"role": "USER", "maxLimits": {"memoryMiB": 1_000_000}}]},
            "roles.USER.maxLimits.memoryMiB must be between 1 and 1024",
        ),
        (
            {"roles": [{"role": "USER", "defaultLimits": {"wallTimeMs": 60_000}, "maxLimits": {"wallTimeMs": 1000}}]},
            "roles.USER: default wallTimeMs must not exceed the maximum",
        ),
        ({"roles": [{"role": "USER", "activeExecutions": 0}]}, "roles.USER.activeExecutions: "),
        ({"queuedExecutionsCap": 0}, "queuedExecutionsCap: "),
    ],
    ids=["above-ceiling", "default-above-max", "no-runs", "no-queue"],
)
async def test_invalid_system_settings_are_refused_and_nothing_changes(
    admin: GraphQLClient, system_settings: dict[str, Any], change: dict[str, Any], message: str
) -> None:
    with pytest.raises(GraphQLFailure) as failure:
        await admin.execute(UPDATE_SYSTEM_SETTINGS, {"input": change})
    assert failure.value.code == "BAD_USER_INPUT"
    assert failure.value.message.startswith(message)
    assert (await admin.execute(SYSTEM_SETTINGS))["systemSettings"] == system_settings
