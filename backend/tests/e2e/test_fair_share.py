"""Runs start in an order fair between users, across several workers sharing one Redis.

Its own API and two workers (two runs each) on its own database and Redis key prefix, so the
session's worker never takes these runs and the slots are known.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator

import pytest

from podrun.settings import Settings
from tests.client import GraphQLClient
from tests.databases import delete_keys, drop_database, fresh_database
from tests.e2e.helpers import submit, wait_for_status
from tests.processes import PodrunDeployment, wait_ready

FAIR_PREFIX = "podrun-test-fair"
WORKERS = 2
RUNS_PER_WORKER = 2
# Waits for stdin, which only the test closes: the run holds its slot for as long as the test wants.
HOLDER = "input()\n"
LONG = {"wallTimeMs": 60_000}
CANCEL = "mutation($id: ID!) { cancelExecution(id: $id) { status } }"
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
            "PODRUN_WORKER__CONCURRENCY": str(RUNS_PER_WORKER),
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
    query = "query($id: ID!) { execution(id: $id) { status } }"
    return [(await client.execute(query, {"id": execution_id}))["execution"]["status"] for execution_id in ids]


async def test_a_user_holding_every_slot_delays_another_users_run_by_one_slot_only(
    deployment: PodrunDeployment,
) -> None:
    alice = await GraphQLClient(deployment.base_url).register()
    bob = await GraphQLClient(deployment.base_url).register()
    admin = await admin_of(deployment)
    slots = WORKERS * RUNS_PER_WORKER
    # Alice's whole quota: as many runs as there are slots hold them, as many again wait behind.
    held = [await submit(alice, HOLDER, limits=LONG) for _ in range(slots)]
    for execution_id in held:
        await wait_for_status(alice, execution_id, "RUNNING", timeout=60)
    waiting = [await submit(alice, HOLDER, limits=LONG) for _ in range(slots)]
    try:
        fair = await submit(bob, "print('fair')\n")
        assert await statuses(alice, waiting) == ["QUEUED"] * slots
        assert (await bob.execute("query($id: ID!) { execution(id: $id) { status } }", {"id": fair}))["execution"][
            "status"
        ] == "QUEUED"
        users = {edge["node"]["id"]: edge["node"] for edge in (await admin.execute(USERS))["users"]["edges"]}
        assert (users[alice.user_id]["runningExecutions"], users[alice.user_id]["queuedExecutions"]) == (slots, slots)
        assert (users[bob.user_id]["runningExecutions"], users[bob.user_id]["queuedExecutions"]) == (0, 1)

        # One of Alice's slots frees up: Bob's run, not Alice's next one, takes it.
        await alice.execute(CANCEL, {"id": held[0]})
        await wait_for_status(bob, fair, "SUCCEEDED", timeout=30)
        # Bob's run has ended, so at most one of Alice's waiting runs took its slot; the rest still wait.
        assert (await statuses(alice, waiting))[1:] == ["QUEUED"] * (slots - 1)
        stdout = await bob.execute("query($id: ID!) { execution(id: $id) { stdout } }", {"id": fair})
        assert stdout["execution"]["stdout"] == "fair\n"
    finally:
        for execution_id in [*waiting, *held]:
            await alice.execute(CANCEL, {"id": execution_id})
