"""Database configuration shared by the API, the worker and the CLI."""

from __future__ import annotations

from advanced_alchemy.base import orm_registry
from advanced_alchemy.config import AsyncSessionConfig, EngineConfig, SQLAlchemyAsyncConfig
from sqlalchemy import MetaData

from podrun.settings import Settings

metadata: MetaData = orm_registry.metadata


def database_config(settings: Settings) -> SQLAlchemyAsyncConfig:
    """The Advanced Alchemy config: one engine per process, sessions per unit of work."""
    return SQLAlchemyAsyncConfig(
        connection_string=settings.database_url,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        # A pooled connection is checked before use, so the pool recovers on its own after PostgreSQL restarts.
        engine_config=EngineConfig(pool_pre_ping=True),
        create_all=False,
    )
