"""Creating the database and applying migrations."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from podrun.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    """Alembic's config, pointing at our migrations and database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    return config


async def create_database(settings: Settings) -> bool:
    """Create the database named in `database_url` if it does not exist; True if it was created."""
    url = make_url(settings.database_url)
    server = url.set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(server.render_as_string(hide_password=False))
    try:
        if await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", url.database):
            return False
        # Identifiers cannot be parameters; quote_ident-style quoting of our own setting.
        name = '"' + (url.database or "").replace('"', '""') + '"'
        await connection.execute(f"CREATE DATABASE {name}")
        return True
    finally:
        await connection.close()


def migrate(settings: Settings) -> None:
    """Create the database if needed and bring it to the newest revision."""
    asyncio.run(create_database(settings))
    command.upgrade(alembic_config(settings), "head")
