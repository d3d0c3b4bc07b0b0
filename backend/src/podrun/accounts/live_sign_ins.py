"""The sign-ins an API process has found live, remembered while PostgreSQL tells it of every change.

Every operation checks its caller's sign-in and account (a revoked sign-in, a disabled account, a new role
refuse the next operation, of a socket too). That was a query per operation. Triggers (migration 0011) NOTIFY
channel `podrun_accounts` with the user's id of every change to a sign-in or an account, as the changing
transaction commits; this process LISTENs on a connection of its own. A check answered while listening is
remembered until the next notice for that user, and later checks of the same sign-in skip the query.

Nothing is remembered while not listening — before the listener is connected, once it lost its connection (a
notice may have been missed then), and a check whose query overlapped a notice or a reconnection is not kept.
What is remembered also lapses after `KEEP_S`, whatever the notices said.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from sqlalchemy import inspect, make_url
from sqlalchemy.orm import make_transient_to_detached

from podrun import tasks
from podrun.accounts.models import User
from podrun.core.backoff import Backoff

log = structlog.get_logger(__name__)

CHANNEL = "podrun_accounts"
# How the listener's connection shows in pg_stat_activity.
APPLICATION_NAME = "podrun account notices"
KEEP_S = 30.0
CAPACITY = 10_000
# The listener's connection is asked this often whether it still answers (a silent one hears no notice).
PROBE_S = 5.0
RETRY_FIRST_DELAY_S = 0.1
RETRY_MAX_DELAY_S = 5.0

Key = tuple[UUID, UUID, int]  # (user, sign-in, token version)


class LiveSignIns:
    """Live sign-ins this process checked, with the account as it was, kept while every change is heard."""

    def __init__(self, database_url: str) -> None:
        self._dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._known: OrderedDict[Key, tuple[float, dict[str, Any]]] = OrderedDict()
        self._by_user: dict[UUID, set[Key]] = {}
        # Moves at every notice and every change of listening: a check that saw it move is not remembered.
        self._epoch = 0
        self._listening = False
        self._task: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        """Whether every change is heard now (what is remembered is trusted only then)."""
        return self._listening

    async def start(self) -> None:
        """Start listening in the background (checks query PostgreSQL until the listener is up)."""
        self._task = asyncio.create_task(self._listen(), name="live-sign-ins")

    async def stop(self) -> None:
        """Stop listening and forget."""
        if self._task is not None:
            await tasks.stop(self._task)
        self._lost()

    def remembered(self, user_id: UUID, sign_in_id: UUID, version: int) -> User | None:
        """The account of a sign-in found live, while that is still known to hold; None if it must be checked."""
        key = (user_id, sign_in_id, version)
        if self._listening and (known := self._known.get(key)) is not None:
            if time.monotonic() - known[0] < KEEP_S:
                self._known.move_to_end(key)
                return _detached(known[1])
            self._forget(key)
        return None

    async def user(self, user_id: UUID, sign_in_id: UUID, version: int, check: Callable[[], Awaitable[User]]) -> User:
        """The account of a live sign-in: remembered, or `check`ed against PostgreSQL (which raises if not live)."""
        if (user := self.remembered(user_id, sign_in_id, version)) is not None:
            return user
        key = (user_id, sign_in_id, version)
        epoch = self._epoch
        user = await check()
        if self._listening and self._epoch == epoch:
            self._remember(key, _values(user))
        return user

    def _remember(self, key: Key, values: dict[str, Any]) -> None:
        self._known[key] = (time.monotonic(), values)
        self._known.move_to_end(key)
        self._by_user.setdefault(key[0], set()).add(key)
        if len(self._known) > CAPACITY:
            self._forget(next(iter(self._known)))

    def _forget(self, key: Key) -> None:
        self._known.pop(key, None)
        keys = self._by_user.get(key[0])
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_user[key[0]]

    def _changed(self, user_id: UUID) -> None:
        self._epoch += 1
        for key in self._by_user.pop(user_id, set()):
            self._known.pop(key, None)

    def _forget_all(self) -> None:
        self._epoch += 1
        self._known.clear()
        self._by_user.clear()

    def _lost(self) -> None:
        self._listening = False
        self._forget_all()

    def _on_notice(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            user_id = UUID(payload)
        except ValueError:  # not one of ours: forget everything rather than guess
            self._forget_all()
            return
        self._changed(user_id)

    async def _listen(self) -> None:
        backoff = Backoff(RETRY_FIRST_DELAY_S, RETRY_MAX_DELAY_S)
        while True:
            try:
                connection = await asyncpg.connect(self._dsn, server_settings={"application_name": APPLICATION_NAME})
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
                log.warning("account notices: cannot reach PostgreSQL; retrying", error=type(error).__name__)
            else:
                try:
                    await self._hear(connection, backoff)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
                    log.warning("account notices: the listener lost PostgreSQL", error=type(error).__name__)
                finally:
                    self._lost()
                    connection.terminate()
            await backoff.sleep()

    async def _hear(self, connection: asyncpg.Connection[Any], backoff: Backoff) -> None:
        """Listen on `connection` until it closes or stops answering; every check queries PostgreSQL after."""
        closed = asyncio.Event()
        connection.add_termination_listener(lambda _: closed.set())
        await connection.add_listener(CHANNEL, self._on_notice)
        self._epoch += 1
        self._listening = True
        backoff.reset()
        while not closed.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PROBE_S):
                    await closed.wait()
            if not closed.is_set():
                async with asyncio.timeout(PROBE_S):
                    await connection.execute("SELECT 1")
        log.warning("account notices: the listener's connection closed")


def _values(user: User) -> dict[str, Any]:
    """The account's loaded columns (a copy: what is remembered is never handed out)."""
    state = inspect(user)
    return {attr.key: state.dict[attr.key] for attr in state.mapper.column_attrs if attr.key in state.dict}


def _detached(values: dict[str, Any]) -> User:
    """A fresh detached account with `values`, as a query in a closed session would have given."""
    user = User(
        **{key: copy.deepcopy(value) if isinstance(value, dict | list) else value for key, value in values.items()}
    )
    make_transient_to_detached(user)
    return user
