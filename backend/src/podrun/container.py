"""Everything a process shares, wired once at start-up, for the API and the worker alike.

The container owns the process's Redis pool, database engine, runner and runtime catalog (and, in
the API, the stream hub), and hands out services per unit of work with all of that already in them:
`async with container.executions() as executions: ...`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from advanced_alchemy.config import SQLAlchemyAsyncConfig
from arq.connections import ArqRedis
from sqlalchemy import text

from podrun.accounts.live_sign_ins import LiveSignIns
from podrun.accounts.service import UserService
from podrun.db.base import database_config
from podrun.executions.heartbeats import Heartbeats
from podrun.executions.lifecycle import RunLifecycle
from podrun.executions.service import ExecutionService
from podrun.kernels.lifecycle import KernelLifecycle
from podrun.kernels.service import KernelService
from podrun.kernels.wakes import KernelWakes
from podrun.observability.dependencies import DependencyWatch
from podrun.observability.exposition import metrics_server, process_ended
from podrun.policy.store import PolicyStore
from podrun.redis_client import Keys, create_redis
from podrun.runners import build_runner
from podrun.runners.base import Runner
from podrun.runners.catalog import RuntimeCatalog
from podrun.scripts.service import ScriptService
from podrun.settings import Settings
from podrun.streams.hub import StreamHub
from podrun.tools.service import ToolService

Role = Literal["api", "worker", "cli"]


@dataclass
class Container:
    """The long-lived objects of one process."""

    settings: Settings
    db: SQLAlchemyAsyncConfig
    redis: ArqRedis
    keys: Keys
    heartbeats: Heartbeats
    # The system settings as this process last read them, reloaded when an admin changes them.
    policy: PolicyStore
    # The API's one Redis reader for every subscription; None elsewhere.
    hub: StreamHub | None = None
    # The API's memory of the sign-ins it checked, kept while PostgreSQL tells it of every change; None elsewhere.
    live_sign_ins: LiveSignIns | None = None

    @cached_property
    def runner(self) -> Runner:
        """The runner settings choose (made on first use: the CLI never needs one)."""
        return build_runner(self.settings)

    @cached_property
    def catalog(self) -> RuntimeCatalog:
        """The runtimes the runner offers, and how it isolates them."""
        return RuntimeCatalog(self.runner.runtimes(), self.runner.isolation())

    @classmethod
    @asynccontextmanager
    async def running(cls, settings: Settings, role: Role) -> AsyncIterator[Container]:
        """Build the container for a process, and close what it opened when the process stops."""
        keys = Keys(settings.redis_prefix)
        redis = await create_redis(settings, role)
        db = database_config(settings)
        container = cls(
            settings=settings,
            db=db,
            redis=redis,
            keys=keys,
            heartbeats=Heartbeats(redis, keys),
            policy=PolicyStore(settings, db, redis, keys),
            hub=StreamHub(redis, keys) if role == "api" else None,
            live_sign_ins=LiveSignIns(settings.database_url) if role == "api" else None,
        )
        if role != "cli":
            container.catalog  # noqa: B018 - fail at start-up, not on the first run, when no runtime is usable
        if container.hub is not None:
            await container.hub.start()
        if container.live_sign_ins is not None:
            await container.live_sign_ins.start()
        dependencies = DependencyWatch({"database": container.ping_database, "redis": redis.ping})
        if role != "cli":
            dependencies.start()
        metrics = settings.metrics
        try:
            with metrics_server(metrics.host, {"api": metrics.api_port, "worker": metrics.worker_port}.get(role), role):
                yield container
        finally:
            await dependencies.stop()
            if "kernel_wakes" in container.__dict__:
                await container.kernel_wakes.close()
            if container.hub is not None:
                await container.hub.stop()
            if container.live_sign_ins is not None:
                await container.live_sign_ins.stop()
            await redis.aclose()
            await container.db.get_engine().dispose()
            process_ended()

    async def ping_database(self) -> None:
        """One round trip to PostgreSQL (raises when it does not answer)."""
        async with self.db.get_engine().connect() as connection:
            await connection.execute(text("SELECT 1"))

    @asynccontextmanager
    async def executions(self) -> AsyncIterator[ExecutionService]:
        """An execution service with its own database session."""
        async with self.db.get_session() as session:
            yield ExecutionService(
                session,
                settings=self.settings,
                redis=self.redis,
                keys=self.keys,
                catalog=self.catalog,
                policy=self.policy,
            )

    @asynccontextmanager
    async def kernels(self) -> AsyncIterator[KernelService]:
        """A kernel service with its own database session."""
        async with self.db.get_session() as session:
            yield KernelService(
                session,
                settings=self.settings,
                redis=self.redis,
                keys=self.keys,
                catalog=self.catalog,
                policy=self.policy,
            )

    @asynccontextmanager
    async def users(self) -> AsyncIterator[UserService]:
        """A user service with its own database session."""
        async with self.db.get_session() as session:
            yield UserService(
                session,
                settings=self.settings,
                redis=self.redis,
                keys=self.keys,
                policy=self.policy,
                live_sign_ins=self.live_sign_ins,
            )

    @asynccontextmanager
    async def scripts(self) -> AsyncIterator[ScriptService]:
        """A saved-script service with its own database session."""
        async with self.db.get_session() as session:
            yield ScriptService(session, settings=self.settings, catalog=self.catalog)

    @asynccontextmanager
    async def tools(self) -> AsyncIterator[ToolService]:
        """A tool service with its own database session."""
        async with self.db.get_session() as session:
            yield ToolService(session, settings=self.settings, catalog=self.catalog)

    @cached_property
    def kernel_lifecycle(self) -> KernelLifecycle:
        """The worker's side of kernels: it opens a short session per step."""
        return KernelLifecycle(self.db)

    @cached_property
    def kernel_wakes(self) -> KernelWakes:
        """The worker's one listener for its kernels' wakes."""
        return KernelWakes(self.redis, self.keys)

    @cached_property
    def lifecycle(self) -> RunLifecycle:
        """The worker's side of runs: it opens a short session per step of a run."""
        return RunLifecycle(self.db, self.redis, self.keys, self.settings)

    @property
    def stream_hub(self) -> StreamHub:
        """The API's stream hub."""
        if self.hub is None:
            raise RuntimeError("only the API process follows streams")
        return self.hub
