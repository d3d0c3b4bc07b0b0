"""Quotas: runs in progress and submissions per user, runs queued in all, and sign-ins at one email from one
client are limited, with RATE_LIMITED and retryAfterMs; parallel clients never get more than the quota; `myQuota`
shows them (failed sign-ins: tests/e2e/test_sign_in.py)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from podrun.settings import Settings
from tests.client import GraphQLClient, GraphQLFailure
from tests.e2e.conftest import UPDATE_SYSTEM_SETTINGS
from tests.e2e.helpers import submit, wait_for_status

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


MY_QUOTA = """
{ myQuota { activeExecutions activeExecutionsLimit submissionsThisMinute submissionsPerMinute submissionsResetInMs
            queuedExecutions queuedExecutionsCap scriptBytes
            defaultLimits { wallTimeMs } maxLimits { wallTimeMs } } }
"""
SLEEPER = "import time\ntime.sleep(30)\n"


async def my_quota(client: GraphQLClient) -> dict[str, Any]:
    return (await client.execute(MY_QUOTA))["myQuota"]  # type: ignore[no-any-return]


async def outcomes(client: GraphQLClient, script: str, count: int) -> tuple[list[str], list[GraphQLFailure]]:
    """Submit `count` runs at once; the ids of those accepted and the refusals."""
    results = await asyncio.gather(*(submit(client, script) for _ in range(count)), return_exceptions=True)
    refused = [result for result in results if isinstance(result, GraphQLFailure)]
    accepted = [result for result in results if isinstance(result, str)]
    assert len(accepted) + len(refused) == count, results
    return accepted, refused


async def test_my_quota_shows_what_is_used_and_each_limit(alice: GraphQLClient, settings: Settings) -> None:
    before = await my_quota(alice)
    assert {k: v for k, v in before.items() if k not in ("queuedExecutions", "submissionsResetInMs")} == {
        "activeExecutions": 0,
        "activeExecutionsLimit": settings.quotas.active_executions_per_user,
        "submissionsThisMinute": 0,
        "submissionsPerMinute": settings.quotas.submissions_per_minute,
        "queuedExecutionsCap": settings.quotas.queued_executions_cap,
        "scriptBytes": settings.limits.script_bytes,
        "defaultLimits": {"wallTimeMs": settings.limits.default.wall_time_ms},
        "maxLimits": {"wallTimeMs": settings.limits.maximum.wall_time_ms},
    }
    execution_id = await submit(alice, SLEEPER)
    during = await my_quota(alice)
    assert (during["activeExecutions"], during["submissionsThisMinute"]) == (1, 1)
    assert 0 < during["submissionsResetInMs"] <= 60_000
    await alice.execute(CANCEL, {"id": execution_id})
    after = await my_quota(alice)
    assert (after["activeExecutions"], after["submissionsThisMinute"]) == (0, 1)


async def test_parallel_submissions_take_exactly_the_free_run_slots(alice: GraphQLClient, settings: Settings) -> None:
    allowed = settings.quotas.active_executions_per_user
    accepted, refused = await outcomes(alice, SLEEPER, allowed + 4)
    try:
        assert len(accepted) == allowed
        assert {failure.code for failure in refused} == {"RATE_LIMITED"}
        assert all(failure.errors[0]["extensions"]["retryAfterMs"] > 0 for failure in refused)
        assert (await my_quota(alice))["activeExecutions"] == allowed
    finally:
        for execution_id in accepted:
            await alice.execute(CANCEL, {"id": execution_id})


async def test_parallel_submissions_take_exactly_the_rest_of_the_minute(
    alice: GraphQLClient, admin: GraphQLClient, system_settings: dict[str, Any]
) -> None:
    await admin.execute(UPDATE_SYSTEM_SETTINGS, {"input": {"roles": [{"role": "USER", "submissionsPerMinute": 3}]}})
    accepted, refused = await outcomes(alice, "pass\n", 7)
    assert len(accepted) == 3
    assert {failure.code for failure in refused} == {"RATE_LIMITED"}
    assert all(0 < failure.errors[0]["extensions"]["retryAfterMs"] <= 60_000 for failure in refused)
    assert all(failure.message.startswith("too many submissions") for failure in refused)


async def test_a_full_queue_refuses_submissions_instead_of_growing(
    alice: GraphQLClient, bob: GraphQLClient, admin: GraphQLClient, settings: Settings, system_settings: dict[str, Any]
) -> None:
    # Keep every worker slot busy, so what is submitted next stays queued.
    busy = [await submit(alice, SLEEPER) for _ in range(settings.worker.concurrency)]
    ids: list[str] = []
    try:
        for execution_id in busy:
            await wait_for_status(alice, execution_id, "RUNNING", timeout=60)
        queued_now = (await my_quota(bob))["queuedExecutions"]
        cap = queued_now + 2
        await admin.execute(UPDATE_SYSTEM_SETTINGS, {"input": {"queuedExecutionsCap": cap}})
        accepted, refused = await outcomes(bob, SLEEPER, 5)
        ids = accepted
        assert len(accepted) == 2
        assert {(failure.code, failure.message) for failure in refused} == {
            ("RATE_LIMITED", "the queue is full; try again shortly")
        }
        assert all(failure.errors[0]["extensions"]["retryAfterMs"] > 0 for failure in refused)
        quota = await my_quota(bob)
        assert (quota["queuedExecutions"], quota["queuedExecutionsCap"]) == (cap, cap)
        # A queued run that is cancelled frees its place at once.
        await bob.execute(CANCEL, {"id": ids.pop()})
        ids.append(await submit(bob, SLEEPER))
    finally:
        for execution_id in ids:
            await bob.execute(CANCEL, {"id": execution_id})
        for execution_id in busy:
            await alice.execute(CANCEL, {"id": execution_id})
