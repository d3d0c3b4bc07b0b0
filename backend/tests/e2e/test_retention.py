"""Runs can be deleted (and expire), and what a user's runs hold is counted against a cap.

`deleteExecution` removes the row, its archived log, its artifacts and its Redis keys (a run still going
is cancelled first), also when it races the run's own end; `myQuota` shows the storage a user holds and
its cap, and a submission past the cap is refused with nothing changed; the workers' sweep deletes ended
runs past their role's retention, never a run still going.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from podrun.core.roles import Role
from podrun.executions.repository import ExecutionRepository
from podrun.settings import Settings
from tests.client import GraphQLClient, GraphQLFailure
from tests.e2e.conftest import UPDATE_SYSTEM_SETTINGS
from tests.e2e.helpers import submit, wait_for_status

DELETE = "mutation($id: ID!) { deleteExecution(id: $id) }"
EXECUTION = "query($id: ID!) { execution(id: $id) { id status artifacts { url } } }"
STORAGE = "{ myQuota { storageBytes storageLimitBytes retentionDays submissionsThisMinute activeExecutions } }"
SLEEPER = "import time\nprint('started', flush=True)\ntime.sleep(30)\n"
WITH_ARTIFACT = "print('hello')\nopen('/tmp/outputs/r.txt', 'w').write('r' * 1000)\n"
TABLES = ("executions", "execution_logs", "artifacts")
START_KERNEL = "mutation($input: StartKernelInput!) { startKernel(input: $input) { id } }"
RUN_IN_KERNEL = "mutation($k: ID!, $code: String!) { runInKernel(kernelId: $k, code: $code) { id } }"
STOP_KERNEL = "mutation($id: ID!) { stopKernel(id: $id) { id } }"


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(settings.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


async def rows_left(database: AsyncEngine, execution_id: str) -> dict[str, int]:
    """How many rows of each table still belong to the run."""
    counts = {}
    async with database.connect() as connection:
        for table in TABLES:
            column = "id" if table == "executions" else "execution_id"
            query = text(f"SELECT count(*) FROM {table} WHERE {column} = :id")
            counts[table] = int((await connection.execute(query, {"id": uuid.UUID(execution_id)})).scalar_one())
    return counts


async def keys_left(redis: aioredis.Redis, settings: Settings, execution_id: str) -> list[str]:
    """Podrun's Redis keys naming the run (arq's own job and result keys are not Podrun's: docs/operating.md)."""
    return sorted(key.decode() for key in await redis.keys(f"{settings.redis_prefix}:*{execution_id}*"))


async def storage(client: GraphQLClient) -> dict[str, Any]:
    return (await client.execute(STORAGE))["myQuota"]  # type: ignore[no-any-return]


async def finished(client: GraphQLClient, script: str, **fields: Any) -> str:
    execution_id = await submit(client, script, **fields)
    await wait_for_status(client, execution_id, "SUCCEEDED", "FAILED", timeout=60)
    return execution_id


async def test_deleting_a_run_removes_its_rows_artifacts_and_redis_keys(
    alice: GraphQLClient, database: AsyncEngine, redis: aioredis.Redis, settings: Settings
) -> None:
    execution_id = await finished(alice, WITH_ARTIFACT)
    [artifact] = (await alice.execute(EXECUTION, {"id": execution_id}))["execution"]["artifacts"]
    assert await rows_left(database, execution_id) == {"executions": 1, "execution_logs": 1, "artifacts": 1}
    assert await keys_left(redis, settings, execution_id) == [f"{settings.redis_prefix}:events:{execution_id}"]

    assert (await alice.execute(DELETE, {"id": execution_id})) == {"deleteExecution": execution_id}

    assert await rows_left(database, execution_id) == dict.fromkeys(TABLES, 0)
    assert await keys_left(redis, settings, execution_id) == []
    with pytest.raises(GraphQLFailure) as gone:
        await alice.execute(EXECUTION, {"id": execution_id})
    assert gone.value.code == "NOT_FOUND"
    assert (await alice.download(artifact["url"])).status_code == 404
    with pytest.raises(GraphQLFailure) as again:
        await alice.execute(DELETE, {"id": execution_id})
    assert again.value.code == "NOT_FOUND"


async def test_only_the_owner_or_an_admin_deletes_a_run(
    alice: GraphQLClient, bob: GraphQLClient, admin: GraphQLClient, database: AsyncEngine
) -> None:
    execution_id = await finished(alice, "print('mine')")
    for bad_id in (execution_id, "not-an-id", str(uuid.uuid4())):
        with pytest.raises(GraphQLFailure) as refused:
            await bob.execute(DELETE, {"id": bad_id})
        assert refused.value.code == "NOT_FOUND"
    assert (await rows_left(database, execution_id))["executions"] == 1
    assert (await admin.execute(DELETE, {"id": execution_id})) == {"deleteExecution": execution_id}
    assert (await rows_left(database, execution_id))["executions"] == 0


async def test_a_run_still_going_is_cancelled_then_deleted(
    alice: GraphQLClient, database: AsyncEngine, redis: aioredis.Redis, settings: Settings
) -> None:
    running = await submit(alice, SLEEPER)
    await wait_for_status(alice, running, "RUNNING", timeout=60)
    queued = await submit(alice, SLEEPER)
    for execution_id in (running, queued):
        assert (await alice.execute(DELETE, {"id": execution_id})) == {"deleteExecution": execution_id}
        assert await rows_left(database, execution_id) == dict.fromkeys(TABLES, 0)
        assert await keys_left(redis, settings, execution_id) == []
    # Their slots of the runs-in-progress quota are free again.
    assert (await storage(alice))["activeExecutions"] == 0


@pytest.mark.parametrize("delay_ms", [0, 30, 60, 90, 120, 180, 250, 400])
async def test_a_delete_racing_the_runs_end_leaves_nothing_behind(
    alice: GraphQLClient, database: AsyncEngine, redis: aioredis.Redis, settings: Settings, delay_ms: int
) -> None:
    # Short runs deleted at moments around their end: while queued, starting, running, archiving, or just after.
    ids = [await submit(alice, WITH_ARTIFACT) for _ in range(3)]
    await asyncio.sleep(delay_ms / 1000)
    for execution_id in ids:
        assert await delete_until_stopped(alice, execution_id) == execution_id
    # Whatever the worker does after the delete (finishing, appending the terminal event) leaves nothing.
    await asyncio.sleep(1.5)
    for execution_id in ids:
        assert await rows_left(database, execution_id) == dict.fromkeys(TABLES, 0)
        assert await keys_left(redis, settings, execution_id) == []
    assert (await storage(alice))["storageBytes"] == 0


async def delete_until_stopped(client: GraphQLClient, execution_id: str) -> str:
    """Delete a run, asking again while the answer is CONFLICT (still stopping); the id deleted."""
    while True:
        try:
            return str((await client.execute(DELETE, {"id": execution_id}))["deleteExecution"])
        except GraphQLFailure as failure:
            if failure.code != "CONFLICT":
                raise


async def test_my_quota_counts_the_bytes_a_users_runs_hold(
    alice: GraphQLClient, settings: Settings, database: AsyncEngine
) -> None:
    before = await storage(alice)
    assert before == {
        "storageBytes": 0,
        "storageLimitBytes": settings.quotas.storage_mib_per_user * 1024 * 1024,
        "retentionDays": settings.quotas.retention_days,
        "submissionsThisMinute": 0,
        "activeExecutions": 0,
    }
    script = "import sys\nprint('o' * 999)\nprint('e' * 499, file=sys.stderr)\n"
    stdin = "in" * 50
    execution_id = await finished(alice, script, stdin=stdin, files=[{"name": "f.txt", "content": "YWJj"}])
    held = len(script) + len(stdin) + 3 + 1000 + 500
    assert (await storage(alice))["storageBytes"] == held
    with_artifact = await finished(alice, WITH_ARTIFACT)
    assert (await storage(alice))["storageBytes"] == held + len(WITH_ARTIFACT) + len("hello\n") + 1000
    await alice.execute(DELETE, {"id": with_artifact})
    assert (await storage(alice))["storageBytes"] == held
    await alice.execute(DELETE, {"id": execution_id})
    assert (await storage(alice))["storageBytes"] == 0


async def test_a_submission_past_the_storage_cap_is_refused_and_changes_nothing(
    alice: GraphQLClient, admin: GraphQLClient, system_settings: dict[str, Any]
) -> None:
    await admin.execute(UPDATE_SYSTEM_SETTINGS, {"input": {"roles": [{"role": "USER", "storageMiB": 1}]}})
    big = await finished(alice, "print('x' * (1024 * 1024 + 10))", limits={"outputBytes": 2 * 1024 * 1024})
    before = await storage(alice)
    assert before["storageBytes"] > before["storageLimitBytes"] == 1024 * 1024
    listed = "{ executions(first: 50) { edges { node { id } } } }"
    runs_before = await alice.execute(listed)
    with pytest.raises(GraphQLFailure) as refused:
        await submit(alice, "print('one more')")
    assert refused.value.code == "BAD_USER_INPUT"
    assert refused.value.errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "reason": "STORAGE_FULL"}
    assert "deleteExecution" in refused.value.message
    assert await storage(alice) == before
    assert await alice.execute(listed) == runs_before
    # A kernel's cell is stored as a submission is: refused the same way, nothing written.
    kernel_id = (await alice.execute(START_KERNEL, {"input": {}}))["startKernel"]["id"]
    with pytest.raises(GraphQLFailure) as cell_refused:
        await alice.execute(RUN_IN_KERNEL, {"k": kernel_id, "code": "print('one more')"})
    assert cell_refused.value.errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "reason": "STORAGE_FULL"}
    assert (await storage(alice))["storageBytes"] == before["storageBytes"]
    assert await alice.execute(listed) == runs_before
    await alice.execute(STOP_KERNEL, {"id": kernel_id})
    # Deleting a run frees its storage: submissions are accepted again.
    await alice.execute(DELETE, {"id": big})
    await finished(alice, "print('one more')")


async def age(database: AsyncEngine, execution_id: str, days: int) -> None:
    """Make a run look as if it had ended `days` ago."""
    async with database.begin() as connection:
        await connection.execute(
            text("UPDATE executions SET finished_at = :at WHERE id = :id"),
            {"at": datetime.now(UTC) - timedelta(days=days), "id": uuid.UUID(execution_id)},
        )


async def test_the_workers_delete_runs_past_their_roles_retention_and_never_a_running_one(
    alice: GraphQLClient,
    admin: GraphQLClient,
    database: AsyncEngine,
    redis: aioredis.Redis,
    settings: Settings,
    system_settings: dict[str, Any],
) -> None:
    await admin.execute(
        UPDATE_SYSTEM_SETTINGS,
        {"input": {"roles": [{"role": "USER", "retentionDays": 7}, {"role": "ADMIN", "retentionDays": 60}]}},
    )
    expired = await finished(alice, WITH_ARTIFACT)
    recent = await finished(alice, "print('recent')")
    admins = await finished(admin, "print('kept longer')")
    running = await submit(alice, SLEEPER)
    await wait_for_status(alice, running, "RUNNING", timeout=60)
    # Read before aging: the sweep may delete the expired run the moment it looks old.
    held = (await storage(alice))["storageBytes"]
    await age(database, expired, 8)
    await age(database, recent, 6)
    await age(database, admins, 8)
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while (await rows_left(database, expired))["executions"]:
            assert asyncio.get_running_loop().time() < deadline, "the expired run was not deleted"
            await asyncio.sleep(0.2)
        assert await rows_left(database, expired) == dict.fromkeys(TABLES, 0)
        assert await keys_left(redis, settings, expired) == []
        for kept in (recent, admins, running):
            assert (await rows_left(database, kept))["executions"] == 1
        assert (await storage(alice))["storageBytes"] == held - (len(WITH_ARTIFACT) + len("hello\n") + 1000)
        assert (await wait_for_status(alice, running, "RUNNING"))["status"] == "RUNNING"
    finally:
        await alice.execute(DELETE, {"id": running})


async def test_the_sweep_deletes_in_bounded_batches_and_gives_the_bytes_back(
    alice: GraphQLClient, admin: GraphQLClient, database: AsyncEngine, system_settings: dict[str, Any]
) -> None:
    # The workers' own sweep keeps away (a century of retention); this test drives the repository's.
    await admin.execute(UPDATE_SYSTEM_SETTINGS, {"input": {"roles": [{"role": "USER", "retentionDays": 36_500}]}})
    old = [await finished(alice, f"print({index})") for index in range(3)]
    running = await submit(alice, SLEEPER)
    await wait_for_status(alice, running, "RUNNING", timeout=60)
    for execution_id in old:
        await age(database, execution_id, 1000)
    held = (await storage(alice))["storageBytes"]
    cutoff = datetime.now(UTC) - timedelta(days=900)
    batches = []
    try:
        for _ in range(3):
            async with AsyncSession(database) as session:
                deleted = await ExecutionRepository(session=session).delete_expired(Role.USER, cutoff, 2)
            batches.append(sorted(str(run.execution_id) for run in deleted))
        assert [len(batch) for batch in batches] == [2, 1, 0]
        assert sorted(batches[0] + batches[1]) == sorted(old)
        assert (await rows_left(database, running))["executions"] == 1
        freed = sum(len(f"print({index})") + len(f"{index}\n") for index in range(3))
        assert (await storage(alice))["storageBytes"] == held - freed
    finally:
        await alice.execute(DELETE, {"id": running})


async def test_retention_and_storage_are_admin_settings_checked_like_the_others(
    admin: GraphQLClient, system_settings: dict[str, Any]
) -> None:
    roles = "{ roles { role storageMiB retentionDays } }"
    update = f"mutation($input: SystemSettingsInput!) {{ updateSystemSettings(input: $input) {roles} }}"
    changed = await admin.execute(update, {"input": {"roles": [{"role": "USER", "storageMiB": 5, "retentionDays": 2}]}})
    assert {"role": "USER", "storageMiB": 5, "retentionDays": 2} in changed["updateSystemSettings"]["roles"]
    for bad in ({"storageMiB": 0}, {"retentionDays": 0}):
        with pytest.raises(GraphQLFailure) as refused:
            await admin.execute(update, {"input": {"roles": [{"role": "USER", **bad}]}})
        assert refused.value.code == "BAD_USER_INPUT"
    current = await admin.execute(f"{{ systemSettings {roles} }}")
    assert {"role": "USER", "storageMiB": 5, "retentionDays": 2} in current["systemSettings"]["roles"]
