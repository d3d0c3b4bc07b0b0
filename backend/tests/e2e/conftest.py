"""A real Podrun for end-to-end tests: migrated test database, API and worker processes.

Tests marked `pods` (what a run in a pod must do as well: streaming, stdin, limits, cancel) run with
both runners: `[local]` (bubblewrap) and `[kubernetes]` (every run a pod of the local Kubernetes 1.20,
through the one Podrun of tests/kubernetes_local/fixtures.py). The others run with the local runner.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from sqlalchemy.engine import make_url

from podrun.settings import Settings, SignInSettings
from tests.client import GraphQLClient
from tests.databases import fresh_database
from tests.e2e.helpers import REFRESH, SET_ROLE
from tests.kubernetes_local.fixtures import RealPodrun
from tests.processes import PodrunDeployment, PodrunProcess, free_port, wait_ready

RUNNERS = ["local", "kubernetes"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "runner" in metafunc.fixturenames:
        runners = RUNNERS if metafunc.definition.get_closest_marker("pods") else ["local"]
        metafunc.parametrize("runner", runners, indirect=True, scope="session")


@pytest.fixture(scope="session")
def runner(request: pytest.FixtureRequest) -> str:
    """The runner of the session's Podrun: "local" or "kubernetes"."""
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def settings(runner: str, request: pytest.FixtureRequest) -> Settings:
    """The settings the session's Podrun runs with."""
    if runner == "kubernetes":
        real: RealPodrun = request.getfixturevalue("real_podrun")
        return real.settings
    return Settings()


@dataclass(frozen=True)
class RunningPodrun:
    """The API and worker processes of the session."""

    url: str
    api: PodrunProcess
    worker: PodrunProcess


@pytest.fixture(scope="session")
def podrun_processes(settings: Settings, runner: str, request: pytest.FixtureRequest) -> Iterator[RunningPodrun]:
    """A running API with one worker, on a fresh database and an empty Redis db."""
    if runner == "kubernetes":
        real: RealPodrun = request.getfixturevalue("real_podrun")
        yield RunningPodrun(
            url=real.deployment.base_url, api=real.deployment.api, worker=real.deployment.live_workers()[0]
        )
        return
    # A test database has a `test` part in its name: podrun_test, or podrun_test_<you> (PODRUN_TEST_DATABASE_URL).
    assert "test" in (make_url(settings.database_url).database or "").split("_"), (
        "tests must never touch the development database"
    )
    fresh_database(settings)
    redis.Redis.from_url(settings.redis_url).flushdb()
    port = free_port()
    api = PodrunProcess("api", "api", "--port", str(port))
    worker = PodrunProcess("worker", "worker")
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, api)
        yield RunningPodrun(url=base_url, api=api, worker=worker)
    finally:
        worker.stop()
        api.stop()


@pytest.fixture(scope="session")
def podrun(podrun_processes: RunningPodrun) -> str:
    """Base URL of the session's API."""
    return podrun_processes.url


@pytest.fixture(scope="session")
def guarded(podrun: str) -> Iterator[str]:
    """Base URL of a second API on the session's database, Redis and worker, for the hostile-client tests:
    production mode (introspection and GraphiQL off), the default sign-in limits, and a first sign-in delay
    long enough that a lock set during a test is still in place at its end (no test depends on timing).
    The tests stand in for its reverse proxy: it trusts X-Forwarded-For from 127.0.0.1, so each test's
    clients have addresses of their own (tests/e2e/hostile.py)."""
    yield from _guarded_api("guarded", {"PODRUN_PROXIES__TRUSTED": '["127.0.0.1"]'})


@pytest.fixture(scope="session")
def exposed(podrun: str) -> Iterator[str]:
    """Base URL of an API like `guarded`, but with no proxy in front of it (the default): X-Forwarded-For is the
    client's own say and must not be believed. Every client of it is 127.0.0.1, so its per-client counters live
    under a key prefix of its own: the session's other APIs count their many sign-ins from 127.0.0.1 too."""
    yield from _guarded_api("exposed", {"PODRUN_REDIS_PREFIX": f"podrun-test-exposed-{uuid.uuid4().hex[:8]}"})


def _guarded_api(name: str, env: dict[str, str]) -> Iterator[str]:
    defaults = SignInSettings()
    deployment = PodrunDeployment(
        name,
        {
            "PODRUN_MODE": "production",
            "PODRUN_SIGNIN__ATTEMPTS_PER_CLIENT_PER_MINUTE": str(defaults.attempts_per_client_per_minute),
            "PODRUN_SIGNIN__REGISTRATIONS_PER_CLIENT_PER_HOUR": str(defaults.registrations_per_client_per_hour),
            "PODRUN_SIGNIN__FIRST_DELAY_S": "600",
            **env,
        },
    )
    try:
        wait_ready(deployment.base_url, deployment.api)
        yield deployment.base_url
    finally:
        deployment.stop()


@pytest.fixture
def anonymous(podrun: str) -> GraphQLClient:
    return GraphQLClient(podrun)


@pytest.fixture
async def alice(anonymous: GraphQLClient) -> GraphQLClient:
    return await anonymous.register()


@pytest.fixture
async def bob(anonymous: GraphQLClient) -> GraphQLClient:
    return await anonymous.register()


ADMIN_PASSWORD = "admin horse battery staple"
SYSTEM_SETTINGS = """
query {
  systemSettings {
    version queuedExecutionsCap registrationOpen
    roles { role activeExecutions submissionsPerMinute storageMiB retentionDays
            defaultLimits { wallTimeMs cpuTimeMs memoryMiB outputBytes processes }
            maxLimits { wallTimeMs cpuTimeMs memoryMiB outputBytes processes } }
  }
}
"""
UPDATE_SYSTEM_SETTINGS = """
mutation($input: SystemSettingsInput!) {
  updateSystemSettings(input: $input) {
    version queuedExecutionsCap registrationOpen
    roles { role activeExecutions submissionsPerMinute storageMiB retentionDays
            defaultLimits { wallTimeMs cpuTimeMs memoryMiB outputBytes processes }
            maxLimits { wallTimeMs cpuTimeMs memoryMiB outputBytes processes } }
  }
}
"""


@pytest.fixture(scope="session")
async def operator(podrun: str) -> GraphQLClient:
    """The session's first administrator, made the way an operator makes one (`podrun create-user --admin`);
    `admin` refreshes its tokens (one sign-in a session keeps it clear of the per-account sign-in limit)."""
    email = f"admin-{uuid.uuid4().hex[:12]}@example.com"
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "podrun.cli", "create-user", "--email", email, "--password", ADMIN_PASSWORD, "--admin"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return await GraphQLClient(podrun).login(email, ADMIN_PASSWORD)


@pytest.fixture
async def admin(anonymous: GraphQLClient, operator: GraphQLClient) -> GraphQLClient:
    """A client signed in as a new administrator: a new account the session's first administrator made one
    (a CLI process per test would cost seconds of start-up each)."""
    email = f"admin-{uuid.uuid4().hex[:12]}@example.com"
    user = await anonymous.register(email, ADMIN_PASSWORD)
    tokens = (await anonymous.execute(REFRESH, {"t": operator.refresh_token}))["refreshToken"]
    operator.token, operator.refresh_token = tokens["accessToken"], tokens["refreshToken"]
    await operator.execute(SET_ROLE, {"id": user.user_id, "role": "ADMIN"})
    # A new role ends the account's sign-ins: sign in again as the administrator it now is.
    return await anonymous.login(email, ADMIN_PASSWORD)


@pytest.fixture
async def system_settings(admin: GraphQLClient) -> AsyncIterator[dict[str, Any]]:
    """The system settings before the test; whatever the test changes is put back after it."""
    before: dict[str, Any] = (await admin.execute(SYSTEM_SETTINGS))["systemSettings"]
    yield before
    roles = [dict(role) for role in before["roles"]]
    await admin.execute(
        UPDATE_SYSTEM_SETTINGS,
        {
            "input": {
                "roles": roles,
                "queuedExecutionsCap": before["queuedExecutionsCap"],
                "registrationOpen": before["registrationOpen"],
            }
        },
    )
