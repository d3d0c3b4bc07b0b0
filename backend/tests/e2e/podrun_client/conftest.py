"""`prun` and PodrunClient against a real API and worker of their own.

Own database (the test database's name + `_prun`, so PODRUN_TEST_DATABASE_URL moves it too), own Redis
key prefix, and access tokens that expire after 2 s: every test that runs longer than that goes through
the transparent refresh. A package-wide deployment, because the resume test restarts its API.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from podrun_client import PodrunClient
from sqlalchemy.engine import make_url

from podrun.settings import Settings
from tests.databases import delete_keys, fresh_database
from tests.e2e.podrun_client.prun import Prun
from tests.processes import PodrunDeployment, wait_ready

PREFIX = "podrun-test-prun"
ACCESS_TOKEN_TTL_S = 2
PASSWORD = "correct horse battery"


class Deployment(PodrunDeployment):
    """An API and a worker; the API can be killed and started again on the same port."""

    def restart_api(self) -> None:
        """SIGKILL the API (its sockets drop without a close frame) and start a new one on the same port."""
        self.api.kill()
        self.processes.remove(self.api)
        self.api = self.spawn(f"{self.name}-api", "api", "--port", self.base_url.rsplit(":", 1)[1])
        wait_ready(self.base_url, self.api)


@pytest.fixture(scope="package")
def deployment() -> Iterator[Deployment]:
    base = Settings()
    database_url = make_url(base.database_url)
    database_url = database_url.set(database=f"{database_url.database}_prun")
    url = database_url.render_as_string(hide_password=False)
    fresh_database(Settings(database_url=url, redis_prefix=PREFIX))
    delete_keys(base.redis_url, PREFIX)
    running = Deployment(
        "prun",
        {
            "PODRUN_DATABASE_URL": url,
            "PODRUN_REDIS_PREFIX": PREFIX,
            "PODRUN_AUTH__ACCESS_TOKEN_TTL_S": str(ACCESS_TOKEN_TTL_S),
        },
    )
    running.worker()
    try:
        wait_ready(running.base_url, running.api)
        yield running
    finally:
        running.stop()


@dataclass(frozen=True)
class User:
    """A fresh account, and a PodrunClient signed in to it for the tests' own checks."""

    email: str
    client: PodrunClient


@pytest.fixture
async def user(deployment: Deployment) -> AsyncIterator[User]:
    email = f"prun-{uuid.uuid4().hex[:12]}@example.com"
    async with PodrunClient(deployment.base_url) as client:
        await client.sign_up(email, PASSWORD)
        yield User(email=email, client=client)


@pytest.fixture
def prun_executable() -> Path:
    """The `prun` console script installed with podrun-client in this environment."""
    return Path(sys.executable).with_name("prun")


@pytest.fixture
async def prun(deployment: Deployment, user: User, tmp_path: Path, prun_executable: Path) -> Prun:
    """`prun`, signed in as `user` with `prun login`, its sign-in kept under its own config directory."""
    signed_in = Prun(prun_executable, tmp_path / "config")
    process = await signed_in.start(
        "login", "--url", deployment.base_url, "--email", user.email, "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert await process.finish() == 0, process.stderr
    return signed_in
