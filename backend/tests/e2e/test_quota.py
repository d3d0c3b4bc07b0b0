"""Quotas: runs in progress per user and sign-ins at one email from one client are limited, with RATE_LIMITED
and retryAfterMs (failed sign-ins: tests/e2e/test_sign_in.py)."""

from __future__ import annotations

import uuid

import pytest

from podrun.settings import Settings
from tests.client import GraphQLClient, GraphQLFailure
from tests.e2e.helpers import submit

CANCEL = "mutation($id: ID!) { cancelExecution(id: $id) { status } }"


async def test_too_many_runs_in_progress_is_rate_limited(alice: GraphQLClient, settings: Settings) -> None:
    sleeper = "import time\ntime.sleep(30)\n"
    ids = [await submit(alice, sleeper) for _ in range(settings.quotas.active_executions_per_user)]
    try:
        with pytest.raises(GraphQLFailure) as failure:
            await submit(alice, sleeper)
        assert failure.value.code == "RATE_LIMITED"
        assert failure.value.errors[0]["extensions"]["retryAfterMs"] > 0
    finally:
        for execution_id in ids:
            await alice.execute(CANCEL, {"id": execution_id})
    # With the runs cancelled, the quota is free again.
    await alice.execute(CANCEL, {"id": await submit(alice, sleeper)})


async def test_repeated_sign_ins_at_one_email_from_one_client_are_rate_limited(
    anonymous: GraphQLClient, settings: Settings
) -> None:
    login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }"
    email = f"quota-{uuid.uuid4().hex[:12]}@example.com"
    await anonymous.register(email, "correct horse battery")
    codes = []
    for _ in range(settings.quotas.login_attempts_per_minute + 1):
        try:
            await anonymous.execute(login, {"e": email, "p": "correct horse battery"})
            codes.append("OK")
        except GraphQLFailure as failure:
            codes.append(str(failure.code))
    assert codes == ["OK"] * settings.quotas.login_attempts_per_minute + ["RATE_LIMITED"]
