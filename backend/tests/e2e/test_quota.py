"""Quotas: runs in progress per user and sign-in attempts are limited, with RATE_LIMITED and retryAfterMs."""

from __future__ import annotations

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


async def test_repeated_sign_in_attempts_are_rate_limited(alice: GraphQLClient, settings: Settings) -> None:
    login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }"
    email = "nobody-" + (alice.user_id or "") + "@example.com"
    codes = []
    for _ in range(settings.quotas.login_attempts_per_minute + 1):
        with pytest.raises(GraphQLFailure) as failure:
            await alice.execute(login, {"e": email, "p": "wrong password"})
        codes.append(failure.value.code)
    assert codes == ["UNAUTHENTICATED"] * settings.quotas.login_attempts_per_minute + ["RATE_LIMITED"]
