"""Sign-ins against the real API processes: single-use refresh tokens, sign-out that signs out, and sockets
that close with their sign-in, in every API process (`podrun` and `guarded` share one database and Redis)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from podrun.accounts.tokens import REFRESH_REFUSED, issue_token
from podrun.app.revocations import CLOSE_CODE, CLOSE_REASON
from podrun.settings import Settings
from tests.client import GraphQLClient, GraphQLFailure
from tests.e2e.helpers import REFRESH, SET_ROLE, submit
from tests.e2e.hostile import RawSocket, client, raw_socket
from tests.processes import LOG_DIR

PASSWORD = "correct horse battery"
ME = "{ me { email role } }"
SIGN_INS = "{ mySignIns { id createdAt lastUsedAt address userAgent current } }"
SIGN_OUT = "mutation { signOut }"
SIGN_OUT_EVERYWHERE = "mutation { signOutEverywhere }"
REVOKE = "mutation($id: ID!) { revokeSignIn(id: $id) }"
WATCH = "subscription($id: ID!) { executionEvents(id: $id) { __typename } }"
LONG_RUN = "import time\nprint('started', flush=True)\ntime.sleep(30)\n"


def new_email() -> str:
    return f"signins-{uuid.uuid4().hex[:12]}@example.com"


async def refresh(anonymous: GraphQLClient, token: str | None) -> dict[str, str]:
    data: dict[str, str] = (await anonymous.execute(REFRESH, {"t": token}))["refreshToken"]
    return data


async def refused(anonymous: GraphQLClient, operation: str, variables: dict[str, Any] | None = None) -> str:
    """The message of an operation that must be refused as UNAUTHENTICATED."""
    with pytest.raises(GraphQLFailure) as failure:
        await anonymous.execute(operation, variables)
    assert failure.value.code == "UNAUTHENTICATED", failure.value.errors
    return failure.value.message


async def login_as(base_url: str, email: str, user_agent: str, address: str | None = None) -> GraphQLClient:
    """A client signed in from a device that says `user_agent` (and, through a trusted proxy, `address`)."""
    query = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken } }"
    headers = {"user-agent": user_agent} | ({"x-forwarded-for": address} if address else {})
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{base_url}/graphql", json={"query": query, "variables": {"e": email, "p": PASSWORD}}, headers=headers
        )
    data = response.json()["data"]["login"]
    signed_in = GraphQLClient(base_url, data["accessToken"], address)
    signed_in.refresh_token = data["refreshToken"]
    return signed_in


async def acknowledged_socket(user: GraphQLClient, socket: Any) -> RawSocket:
    raw = RawSocket(socket)
    await raw.send({"type": "connection_init", "payload": {"authorization": f"Bearer {user.token}"}})
    assert (await raw.receive())["type"] == "connection_ack"
    return raw


async def test_a_refresh_token_works_once_and_its_reuse_ends_the_sign_in_in_every_process(
    podrun: str, guarded: str
) -> None:
    anonymous = GraphQLClient(podrun)
    user = await anonymous.register(new_email(), PASSWORD)
    first = await refresh(anonymous, user.refresh_token)
    assert first["refreshToken"] != user.refresh_token
    # The retired token replayed at another API process: refused, and the whole sign-in with it.
    assert await refused(client(guarded), REFRESH, {"t": user.refresh_token}) == REFRESH_REFUSED
    assert await refused(anonymous, REFRESH, {"t": first["refreshToken"]}) == REFRESH_REFUSED
    assert await refused(anonymous.with_token(first["accessToken"]), ME) == "this token was revoked; sign in again"
    # ... and logged as a likely theft, naming the sign-in.
    sign_in_id = jwt.decode(first["refreshToken"], options={"verify_signature": False})["sid"]
    warnings = [
        line
        for line in (LOG_DIR / "guarded-api.log").read_text(errors="replace").splitlines()
        if "likely a stolen token" in line and sign_in_id in line
    ]
    assert len(warnings) == 1, warnings


async def test_the_chain_of_refreshes_goes_on_while_each_token_is_used_once(podrun: str) -> None:
    anonymous = GraphQLClient(podrun)
    email = new_email()
    user = await anonymous.register(email, PASSWORD)
    token = user.refresh_token
    for _ in range(3):
        tokens = await refresh(anonymous, token)
        token = tokens["refreshToken"]
    assert (await anonymous.with_token(tokens["accessToken"]).execute(ME))["me"]["email"] == email


async def test_every_refused_refresh_token_hears_the_same(podrun: str) -> None:
    anonymous = GraphQLClient(podrun)
    user = await anonymous.register(new_email(), PASSWORD)
    settings = Settings()
    assert user.user_id is not None
    user_id = uuid.UUID(user.user_id)
    retired = user.refresh_token
    current = (await refresh(anonymous, retired))["refreshToken"]
    signed_out = await anonymous.register(new_email(), PASSWORD)
    await signed_out.execute(SIGN_OUT)
    now = int(time.time())
    expired = jwt.encode(
        {"sub": str(user_id), "typ": "refresh", "sid": str(uuid.uuid4()), "iat": now - 10, "exp": now - 5},
        settings.jwt_secret,
        algorithm="HS256",
    )
    tokens = {
        "malformed": "not-a-token",
        "unknown sign-in": issue_token(settings, user_id, "refresh", 0, uuid.uuid4()),
        "expired": expired,
        "an access token": user.token,
        "revoked": signed_out.refresh_token,
        "retired": retired,  # presented last: it ends the sign-in of `current` as well
    }
    messages = {kind: await refused(anonymous, REFRESH, {"t": token}) for kind, token in tokens.items()}
    assert messages == dict.fromkeys(tokens, REFRESH_REFUSED)
    assert await refused(anonymous, REFRESH, {"t": current}) == REFRESH_REFUSED


async def test_sign_out_ends_this_sign_in_only(podrun: str) -> None:
    email = new_email()
    await GraphQLClient(podrun).register(email, PASSWORD)
    laptop = await login_as(podrun, email, "laptop")
    phone = await login_as(podrun, email, "phone")
    assert (await laptop.execute(SIGN_OUT)) == {"signOut": True}
    assert await refused(laptop, ME) == "this token was revoked; sign in again"
    assert await refused(GraphQLClient(podrun), REFRESH, {"t": laptop.refresh_token}) == REFRESH_REFUSED
    assert (await phone.execute(ME))["me"]["email"] == email


async def test_my_sign_ins_lists_the_devices_and_one_is_revoked_from_another(podrun: str, guarded: str) -> None:
    email = new_email()
    other = await GraphQLClient(podrun).register(new_email(), PASSWORD)
    await GraphQLClient(podrun).register(email, PASSWORD)
    laptop = await login_as(podrun, email, "Mozilla/5.0 (laptop)")
    phone = await login_as(guarded, email, "Mozilla/5.0 (phone)", address="198.51.100.23")
    devices = (await laptop.execute(SIGN_INS))["mySignIns"]
    # The registration's own sign-in, the laptop and the phone, most recently used first.
    assert [(d["userAgent"], d["address"], d["current"]) for d in devices[:2]] == [
        ("Mozilla/5.0 (phone)", "198.51.100.23", False),
        ("Mozilla/5.0 (laptop)", "127.0.0.1", True),
    ]
    assert len(devices) == 3
    phone_id = devices[0]["id"]
    assert await laptop.execute(REVOKE, {"id": phone_id}) == {"revokeSignIn": True}
    assert await refused(phone, ME) == "this token was revoked; sign in again"
    remaining = [d["id"] for d in (await laptop.execute(SIGN_INS))["mySignIns"]]
    assert (len(remaining), phone_id in remaining) == (2, False)
    other_id = (await other.execute(SIGN_INS))["mySignIns"][0]["id"]
    for sign_in_id in (phone_id, other_id, "not-an-id"):
        with pytest.raises(GraphQLFailure) as failure:
            await laptop.execute(REVOKE, {"id": sign_in_id})
        assert (failure.value.code, failure.value.message) == ("NOT_FOUND", "sign-in not found")
    assert (await other.execute(ME))["me"] is not None
    assert await laptop.execute(SIGN_OUT_EVERYWHERE) == {"signOutEverywhere": 2}
    assert await refused(laptop, ME) == "this token was revoked; sign in again"


async def test_signing_out_closes_that_sign_ins_sockets_in_every_api_process(podrun: str, guarded: str) -> None:
    email = new_email()
    await GraphQLClient(podrun).register(email, PASSWORD)
    laptop = await login_as(guarded, email, "laptop", address="198.51.100.24")
    phone = await login_as(podrun, email, "phone")
    async with raw_socket(laptop) as laptop_socket, raw_socket(phone) as phone_socket:
        laptop_raw = await acknowledged_socket(laptop, laptop_socket)
        phone_raw = await acknowledged_socket(phone, phone_socket)
        await laptop.with_token(laptop.token).execute(SIGN_OUT)
        assert await laptop_raw.closed_with() == CLOSE_CODE
        assert laptop_socket.close_reason == CLOSE_REASON
        # The phone's socket, of another sign-in, still serves.
        await phone_raw.send({"id": "1", "type": "subscribe", "payload": {"query": ME}})
        assert (await phone_raw.receive())["payload"] == {"data": {"me": {"email": email, "role": "USER"}}}


async def test_a_demoted_admins_running_subscription_is_closed(podrun: str, admin: GraphQLClient) -> None:
    email = new_email()
    user = await GraphQLClient(podrun).register(email, PASSWORD)
    await admin.execute(SET_ROLE, {"id": user.user_id, "role": "ADMIN"})
    promoted = await login_as(podrun, email, "admin's laptop")
    execution_id = await submit(promoted, LONG_RUN)
    async with raw_socket(promoted) as socket:
        raw = await acknowledged_socket(promoted, socket)
        await raw.send({"id": "1", "type": "subscribe", "payload": {"query": WATCH, "variables": {"id": execution_id}}})
        assert (await raw.receive())["type"] == "next"
        await admin.execute(SET_ROLE, {"id": user.user_id, "role": "USER"})
        assert await raw.closed_with() == CLOSE_CODE
    await admin.execute("mutation($id: ID!) { cancelExecution(id: $id) { id } }", {"id": execution_id})


async def test_each_operation_on_a_socket_checks_its_sign_in_even_if_no_notice_came(podrun: str) -> None:
    email = new_email()
    await GraphQLClient(podrun).register(email, PASSWORD)
    laptop = await login_as(podrun, email, "laptop")
    sign_in_id = (await laptop.execute(SIGN_INS))["mySignIns"][0]["id"]
    async with raw_socket(laptop) as socket:
        raw = await acknowledged_socket(laptop, socket)
        # Revoked behind the API's back: no notice on Redis, so the socket stays open.
        engine = create_async_engine(Settings().database_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    text("UPDATE sign_ins SET revoked_at = now(), revoked_reason = 'test' WHERE id = :id"),
                    {"id": uuid.UUID(sign_in_id)},
                )
        finally:
            await engine.dispose()
        await raw.send({"id": "1", "type": "subscribe", "payload": {"query": ME}})
        answer = await raw.receive()
        assert answer["type"] in {"next", "error"}
        errors = answer["payload"]["errors"] if answer["type"] == "next" else answer["payload"]
        assert [(e["extensions"]["code"], e["message"]) for e in errors] == [
            ("UNAUTHENTICATED", "this token was revoked; sign in again")
        ]
