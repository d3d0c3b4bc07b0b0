"""Own test databases and Redis keys: created fresh for a suite, dropped after it."""

from __future__ import annotations

import asyncio

import asyncpg
import redis
from sqlalchemy.engine import make_url

from podrun.db.migrate import create_database, migrate
from podrun.settings import Settings


def drop_database(settings: Settings) -> None:
    """Drop the database named in `settings.database_url`, closing its connections."""
    url = make_url(settings.database_url)

    async def drop() -> None:
        server = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
        connection = await asyncpg.connect(server)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        finally:
            await connection.close()

    asyncio.run(drop())


def fresh_database(settings: Settings) -> None:
    """An empty, migrated database for `settings`."""
    drop_database(settings)
    asyncio.run(create_database(settings))
    migrate(settings)


def delete_keys(redis_url: str, prefix: str) -> None:
    """Delete every key under `prefix` (other suites' keys stay)."""
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


def main() -> None:
    """`python -m tests.databases`: a fresh test database and no keys under the prefix, per the environment.

    The web client's browser tests (frontend/e2e/backend.ts) start their backend this way.
    """
    settings = Settings()
    if "test" not in (make_url(settings.database_url).database or "").split("_"):
        raise SystemExit("refusing to reset a database without a 'test' part in its name")
    fresh_database(settings)
    delete_keys(settings.redis_url, settings.redis_prefix)


if __name__ == "__main__":
    main()
