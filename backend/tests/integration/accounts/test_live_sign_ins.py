"""The memory of live sign-ins against real PostgreSQL: what its triggers announce ends what it remembers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import pytest
from advanced_alchemy.config import SQLAlchemyAsyncConfig
from sqlalchemy import make_url, text

from podrun.accounts.live_sign_ins import APPLICATION_NAME, LiveSignIns
from podrun.accounts.models import SignIn, User
from podrun.db.base import database_config
from podrun.settings import Settings
from tests.databases import drop_database, fresh_database

SETTLE_S = 0.3  # long enough for a notice to arrive on loopback


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    url = make_url(Settings().database_url)
    own = Settings(database_url=url.set(database=f"{url.database}_live").render_as_string(hide_password=False))
    fresh_database(own)
    yield own
    drop_database(own)


class Account:
    """One user with one sign-in, and a check that counts its queries."""

    def __init__(self, db: SQLAlchemyAsyncConfig, user_id: UUID, sign_in_id: UUID) -> None:
        self.db = db
        self.user_id = user_id
        self.sign_in_id = sign_in_id
        self.checks = 0

    async def check(self) -> User:
        self.checks += 1
        async with self.db.get_session() as session:
            user = await session.get(User, self.user_id)
            assert user is not None
            return user

    async def execute(self, statement: str) -> None:
        async with self.db.get_session() as session:
            await session.execute(text(statement), {"user": self.user_id, "sign_in": self.sign_in_id})
            await session.commit()


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[SQLAlchemyAsyncConfig]:
    config = database_config(settings)
    yield config
    await config.get_engine().dispose()


@pytest.fixture
async def account(db: SQLAlchemyAsyncConfig) -> Account:
    async with db.get_session() as session:
        user = User(email=f"{datetime.now(UTC).timestamp()}@example.com", password_hash="x")
        session.add(user)
        await session.flush()
        sign_in = SignIn(user_id=user.id, last_used_at=datetime.now(UTC))
        session.add(sign_in)
        await session.commit()
        return Account(db, user.id, sign_in.id)


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[LiveSignIns]:
    live = LiveSignIns(settings.database_url)
    await live.start()
    await _until(lambda: live.listening)
    yield live
    await live.stop()


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - polling the listener's state
            await asyncio.sleep(0.02)


async def _user(live: LiveSignIns, account: Account) -> User:
    return await live.user(account.user_id, account.sign_in_id, 0, account.check)


async def test_a_checked_sign_in_is_remembered_until_its_account_or_sign_in_changes(
    live: LiveSignIns, account: Account
) -> None:
    first, second = await _user(live, account), await _user(live, account)
    assert account.checks == 1
    assert first is not second  # each caller gets its own copy
    assert (second.id, second.email, second.role, second.preferences) == (first.id, first.email, first.role, {})
    second.preferences["theme"] = "dark"
    assert (await _user(live, account)).preferences == {}

    # A submission moves the storage counter: that says nothing of the sign-in.
    await account.execute("UPDATE users SET storage_bytes = storage_bytes + 10, updated_at = now() WHERE id = :user")
    await asyncio.sleep(SETTLE_S)
    await _user(live, account)
    assert account.checks == 1

    await account.execute("UPDATE users SET disabled = true WHERE id = :user")
    await asyncio.sleep(SETTLE_S)
    assert (await _user(live, account)).disabled
    assert account.checks == 2

    await account.execute("UPDATE sign_ins SET revoked_at = now() WHERE id = :sign_in")
    await asyncio.sleep(SETTLE_S)
    await _user(live, account)
    assert account.checks == 3


async def test_a_check_that_overlaps_a_change_is_not_remembered(live: LiveSignIns, account: Account) -> None:
    async def check_while_changed() -> User:
        user = await account.check()
        await account.execute("UPDATE users SET role = 'ADMIN' WHERE id = :user")
        await asyncio.sleep(SETTLE_S)
        return user

    await live.user(account.user_id, account.sign_in_id, 0, check_while_changed)
    await _user(live, account)
    assert account.checks == 2


async def test_nothing_is_remembered_while_the_listener_is_away(
    live: LiveSignIns, account: Account, settings: Settings
) -> None:
    await _user(live, account)
    server = make_url(settings.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", APPLICATION_NAME
        )
    finally:
        await admin.close()
    await _until(lambda: not live.listening)
    await _user(live, account)
    assert account.checks == 2  # forgotten: a notice may have been missed meanwhile
    await _until(lambda: live.listening)
    await _user(live, account)
    await _user(live, account)
    assert account.checks == 3  # remembered again once listening
