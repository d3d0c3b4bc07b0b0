"""Sign-in protection against the running API (the `guarded` one: default limits, a first delay of 600 s).

Failed sign-ins lock an account only for the client addresses that failed at it, so its owner still
signs in while someone else guesses; per-client limits cap login and registration attempts.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid

import httpx
import pytest

from podrun.settings import SignInSettings
from tests.client import GraphQLClient, GraphQLFailure
from tests.e2e.hostile import client

DEFAULTS = SignInSettings()
LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { user { id } } }"
UNLOCK = "mutation($id: ID!) { unlockUser(id: $id) { id email } }"
PASSWORD = "correct horse battery"


def new_email() -> str:
    return f"signin-{uuid.uuid4().hex[:12]}@example.com"


async def login_code(user: GraphQLClient, email: str, password: str) -> str:
    """The error code of a sign-in, or "OK"."""
    try:
        await user.execute(LOGIN, {"e": email, "p": password})
    except GraphQLFailure as failure:
        code, extensions = str(failure.code), failure.errors[0]["extensions"]
    else:
        return "OK"
    if code == "RATE_LIMITED":
        assert extensions["retryAfterMs"] > 0
    return code


async def guess(attacker: GraphQLClient, email: str, times: int) -> list[str]:
    return [await login_code(attacker, email, "wrong password") for _ in range(times)]


def locking_sequence() -> list[str]:
    """What a client guessing at a fresh account hears: each guess checked until one past the threshold
    (which locks the account), then refused unchecked."""
    return ["UNAUTHENTICATED"] * (DEFAULTS.failures_before_delay + 1) + ["RATE_LIMITED"]


async def test_failures_lock_out_only_the_clients_that_failed(guarded: str) -> None:
    email = new_email()
    await client(guarded).register(email, PASSWORD)
    attacker = client(guarded)
    assert await guess(attacker, email, DEFAULTS.failures_before_delay + 2) == locking_sequence()
    # The owner, at an address that has not failed, signs in while the account is locked.
    owner = client(guarded)
    assert await login_code(owner, email, PASSWORD) == "OK"
    # A second guesser gets one guess checked, then is locked out too; the owner still signs in.
    assert await guess(client(guarded), email, 2) == ["UNAUTHENTICATED", "RATE_LIMITED"]
    assert await login_code(owner, email, PASSWORD) == "OK"
    # The attacker is refused even with the right password: a locked client is not checked.
    assert await login_code(attacker, email, PASSWORD) == "RATE_LIMITED"


async def test_an_unknown_email_is_answered_like_a_known_one(guarded: str) -> None:
    known = new_email()
    await client(guarded).register(known, PASSWORD)
    assert await guess(client(guarded), known, 7) == await guess(client(guarded), new_email(), 7)


async def test_an_email_no_account_could_have_is_a_wrong_email(guarded: str) -> None:
    # PostgreSQL refuses NUL in text and a lone surrogate is not UTF-8: neither reaches the database.
    for email in ("\x00", "a\x00b@example.com"):
        assert await login_code(client(guarded), email, PASSWORD) == "UNAUTHENTICATED"
    # JSON may carry a lone surrogate as an escape (a UTF-8 encoder cannot send it as a character).
    body = json.dumps({"query": LOGIN, "variables": {"e": "\ud800@example.com", "p": PASSWORD}})
    async with httpx.AsyncClient() as http:
        sent = await http.post(f"{guarded}/graphql", content=body, headers={"content-type": "application/json"})
    answer = sent.json()
    assert answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_parallel_guesses_cannot_slip_past_the_count(guarded: str) -> None:
    email = new_email()
    await client(guarded).register(email, PASSWORD)
    attacker = client(guarded)
    codes = await asyncio.gather(*(login_code(attacker, email, "wrong password") for _ in range(20)))
    assert sorted(codes) == sorted(["UNAUTHENTICATED"] * (DEFAULTS.failures_before_delay + 1) + ["RATE_LIMITED"] * 14)


async def test_a_locked_client_is_refused_by_the_web_session_too(guarded: str) -> None:
    email = new_email()
    await client(guarded).register(email, PASSWORD)
    attacker = client(guarded)
    await guess(attacker, email, DEFAULTS.failures_before_delay + 1)
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{guarded}/auth/session",
            json={"email": email, "password": PASSWORD},
            headers={"x-podrun-csrf": "1", "x-forwarded-for": attacker.address or ""},
        )
    assert response.status_code == 429
    assert response.json()["code"] == "RATE_LIMITED"


async def test_an_admin_unlocks_an_account(guarded: str) -> None:
    email = new_email()
    victim = await client(guarded).register(email, PASSWORD)
    attacker = client(guarded)
    assert await guess(attacker, email, DEFAULTS.failures_before_delay + 2) == locking_sequence()
    admin_email = new_email()
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "podrun.cli", "create-user", "--email", admin_email, "--password", PASSWORD, "--admin"],
        check=True,
        capture_output=True,
    )
    admin = client(guarded)
    data = await admin.execute(
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
        {"e": admin_email, "p": PASSWORD},
    )
    admin = admin.with_token(data["login"]["accessToken"])
    assert (await admin.execute(UNLOCK, {"id": victim.user_id}))["unlockUser"] == {"id": victim.user_id, "email": email}
    # Forgotten: the same client's guesses are checked again.
    assert await guess(attacker, email, 1) == ["UNAUTHENTICATED"]
    for unknown in (str(uuid.uuid4()), "not-an-id"):
        with pytest.raises(GraphQLFailure) as failure:
            await admin.execute(UNLOCK, {"id": unknown})
        assert failure.value.codes == ["NOT_FOUND"]


async def test_one_client_has_a_limit_on_sign_in_attempts(guarded: str) -> None:
    flooder = client(guarded)
    codes = [
        await login_code(flooder, new_email(), "wrong password")
        for _ in range(DEFAULTS.attempts_per_client_per_minute + 1)
    ]
    assert codes == ["UNAUTHENTICATED"] * DEFAULTS.attempts_per_client_per_minute + ["RATE_LIMITED"]
    # Another client is not affected.
    assert await login_code(client(guarded), new_email(), "wrong password") == "UNAUTHENTICATED"


async def test_one_client_has_a_limit_on_registrations(guarded: str) -> None:
    registrar = client(guarded)
    for _ in range(DEFAULTS.registrations_per_client_per_hour):
        await registrar.register()
    with pytest.raises(GraphQLFailure) as failure:
        await registrar.register()
    assert failure.value.codes == ["RATE_LIMITED"]
    assert failure.value.errors[0]["extensions"]["retryAfterMs"] > 0


async def test_forged_forwarding_headers_from_an_untrusted_peer_are_ignored_never_an_error(exposed: str) -> None:
    email = new_email()
    await GraphQLClient(exposed).register(email, PASSWORD)
    # Each guess claims another address; with no proxy trusted, all of them are the one host they come from.
    codes = []
    for number in range(12):
        forger = GraphQLClient(exposed, address=f"203.0.113.{number}")
        codes.append(await login_code(forger, email, "wrong password"))
    assert codes == locking_sequence() + ["RATE_LIMITED"] * (12 - len(locking_sequence()))
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{exposed}/graphql",
            json={"query": "{ runtimes { id } }"},
            headers={"x-forwarded-for": "not an address, [::1", "forwarded": 'for="_hidden";by=garbage'},
        )
    assert response.status_code == 200
    assert response.json()["data"]["runtimes"]
