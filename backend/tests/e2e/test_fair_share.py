"""Runs start in an order fair between users, across several workers sharing one Redis, as many at once
as the workers' memory holds.

Its own API and two workers on its own database and Redis key prefix, so the session's worker never
takes these runs and the room the workers have is known.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator

import pytest

from podrun.settings import Settings, WorkerSettings
from tests.client import GraphQLClient
from tests.databases import delete_keys, drop_database, fresh_database
from tests.e2e.helpers import submit, wait_for_status
from tests.processes import PodrunDeployment, wait_ready

FAIR_PREFIX = "podrun-test-fair"
WORKERS = 2
# Each worker's memory budget: its runs' memory limits together stay within it (not a number of runs).
BUDGET_MIB = 1024
# Waits for stdin, which nobody sends: the run holds its slot until the test cancels it.
HOLDER = "input()\n"
CANCEL = "mutation($id: ID!) { cancelExecution(id: $id) { status } }"
STATUS = "query($id: ID!) { execution(id: $id) { status stdout } }"
USERS = "query { users(first: 50) { edges { node { id queuedExecutions runningExecutions } } } }"
ADMIN_PASSWORD = "admin horse battery staple"


@pytest.fixture(scope="module")
def deployment(settings: Settings) -> Iterator[PodrunDeployment]:
    database_url = settings.database_url + "_fair"
    fair_settings = Settings(database_url=database_url, redis_prefix=FAIR_PREFIX)
    fresh_database(fair_settings)
    delete_keys(settings.redis_url, FAIR_PREFIX)
    running = PodrunDeployment(
        "fair",
        {
            "PODRUN_DATABASE_URL": database_url,
            "PODRUN_REDIS_PREFIX": FAIR_PREFIX,
            # The default (the session's workers run fewer, so tests can fill them).
            "PODRUN_WORKER__CONCURRENCY": str(WorkerSettings().concurrency),
            "PODRUN_WORKER__MEMORY_MIB": str(BUDGET_MIB),
        },
    )
    for _ in range(WORKERS):
        running.worker()
    try:
        wait_ready(running.base_url, running.api)
        yield running
    finally:
        running.stop()
        delete_keys(settings.redis_url, FAIR_PREFIX)
        drop_database(fair_settings)


async def admin_of(deployment: PodrunDeployment) -> GraphQLClient:
    email = "admin-fair@example.com"
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "podrun.cli", "create-user", "--email", email, "--password", ADMIN_PASSWORD, "--admin"],
        env={**os.environ, **deployment.env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return await GraphQLClient(deployment.base_url).login(email, ADMIN_PASSWORD)


async def statuses(client: GraphQLClient, ids: list[str]) -> list[str]:
    return [(await client.execute(STATUS, {"id": execution_id}))["execution"]["status"] for execution_id in ids]


async def cancel_all(client: GraphQLClient, ids: list[str]) -> None:
    for execution_id in ids:
        await client.execute(CANCEL, {"id": execution_id})


async def test_a_user_with_all_their_runs_in_progress_leaves_room_for_others(deployment: PodrunDeployment) -> None:
    alice = await GraphQLClient(deployment.base_url).register()
    bob = await GraphQLClient(deployment.base_url).register()
    # Alice's whole quota of runs, small ones: the workers' memory has room for all of them and more.
    small = {"wallTimeMs": 60_000, "memoryMiB": 128}
    held = [await submit(alice, HOLDER, limits=small) for _ in range(8)]
    try:
        for execution_id in held:
            await wait_for_status(alice, execution_id, "RUNNING", timeout=60)
        fair = await submit(bob, "print('fair')\n")
        assert (await wait_for_status(bob, fair, "SUCCEEDED", timeout=30))["status"] == "SUCCEEDED"
        assert await statuses(alice, held) == ["RUNNING"] * len(held)
    finally:
        await cancel_all(alice, held)


async def test_a_user_holding_every_slot_delays_another_users_run_by_one_slot_only(
    deployment: PodrunDeployment,
) -> None:
    alice = await GraphQLClient(deployment.base_url).register()
    bob = await GraphQLClient(deployment.base_url).register()
    admin = await admin_of(deployment)
    # Runs of half a worker's budget: two fit on each worker, whatever the workers' concurrency.
    large = {"wallTimeMs": 60_000, "memoryMiB": BUDGET_MIB // 2}
    slots = WORKERS * 2
    # Alice's whole quota: as many runs as there are slots hold them, as many again wait behind.
    held = [await submit(alice, HOLDER, limits=large) for _ in range(slots)]
    waiting: list[str] = []
    try:
        for execution_id in held:
            await wait_for_status(alice, execution_id, "RUNNING", timeout=60)
        waiting = [await submit(alice, HOLDER, limits=large) for _ in range(slots)]
        fair = await submit(bob, "print('fair')\n")
        assert await statuses(alice, waiting) == ["QUEUED"] * slots
        assert await statuses(bob, [fair]) == ["QUEUED"]
        users = {edge["node"]["id"]: edge["node"] for edge in (await admin.execute(USERS))["users"]["edges"]}
        assert (users[alice.user_id]["runningExecutions"], users[alice.user_id]["queuedExecutions"]) == (slots, slots)
        assert (users[bob.user_id]["runningExecutions"], users[bob.user_id]["queuedExecutions"]) == (0, 1)

        # One of Alice's slots frees up: Bob's run, not Alice's next one, takes it.
        await alice.execute(CANCEL, {"id": held[0]})
        await wait_for_status(bob, fair, "SUCCEEDED", timeout=30)
        # Bob's run has ended, so at most one of Alice's waiting runs took its slot; the rest still wait.
        assert (await statuses(alice, waiting))[1:] == ["QUEUED"] * (slots - 1)
        assert (await bob.execute(STATUS, {"id": fair}))["execution"]["stdout"] == "fair\n"
    finally:
        await cancel_all(alice, [*waiting, *held])
