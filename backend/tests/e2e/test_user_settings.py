"""A user's settings are kept with the account: every client that signs in as them sees the same."""

from __future__ import annotations

import uuid

import pytest

from tests.client import GraphQLClient, GraphQLFailure

SETTINGS = "{ mySettings { theme fontSize tabSize lineWrapping } }"
UPDATE = """
mutation($input: UserSettingsInput!) { updateMySettings(input: $input) { theme fontSize tabSize lineWrapping } }
"""
LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }"
DEFAULTS = {"theme": "SYSTEM", "fontSize": 14, "tabSize": 4, "lineWrapping": False}


async def test_settings_start_at_the_defaults_and_follow_the_account(anonymous: GraphQLClient) -> None:
    email = f"settings-{uuid.uuid4().hex[:12]}@example.com"
    first = await anonymous.register(email)
    assert (await first.execute(SETTINGS))["mySettings"] == DEFAULTS

    changed = (await first.execute(UPDATE, {"input": {"theme": "DARK", "tabSize": 2}}))["updateMySettings"]
    assert changed == {**DEFAULTS, "theme": "DARK", "tabSize": 2}

    # Another device: a new sign-in sees what the first one saved, and changes only what it sends.
    second = await anonymous.login(email, "correct horse battery")
    assert (await second.execute(SETTINGS))["mySettings"] == changed
    await second.execute(UPDATE, {"input": {"lineWrapping": True, "fontSize": None}})
    assert (await first.execute(SETTINGS))["mySettings"] == {**changed, "lineWrapping": True}


async def test_one_users_settings_are_not_anothers(alice: GraphQLClient, bob: GraphQLClient) -> None:
    await alice.execute(UPDATE, {"input": {"theme": "LIGHT"}})
    assert (await bob.execute(SETTINGS))["mySettings"] == DEFAULTS


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ({"fontSize": 100}, "BAD_USER_INPUT", "settings.fontSize: Input should be less than or equal to 32"),
        ({"tabSize": 3}, "BAD_USER_INPUT", "settings.tabSize: must be one of 2, 4, 8"),
        ({"theme": "PURPLE"}, "BAD_USER_INPUT", None),
    ],
    ids=["font-size", "tab-size", "theme"],
)
async def test_invalid_settings_are_refused_and_nothing_changes(
    alice: GraphQLClient, change: dict[str, object], code: str, message: str | None
) -> None:
    with pytest.raises(GraphQLFailure) as failure:
        await alice.execute(UPDATE, {"input": {"lineWrapping": True, **change}})
    assert failure.value.code == code
    if message is not None:
        assert failure.value.message == message
    assert (await alice.execute(SETTINGS))["mySettings"] == DEFAULTS


async def test_settings_need_a_signed_in_user(anonymous: GraphQLClient) -> None:
    with pytest.raises(GraphQLFailure) as failure:
        await anonymous.execute(SETTINGS)
    assert failure.value.code == "UNAUTHENTICATED"
