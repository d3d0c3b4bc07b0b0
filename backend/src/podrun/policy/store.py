"""Where every process reads the current policy: a cached copy, checked against a version number in Redis.

An admin's change is committed to PostgreSQL (the record, with a version that grows), then the new
version is written to Redis. Every read compares the cached version with the one in Redis (one GET) and
reloads the row when they differ, so the next submission in any API process sees the change, with no
restart and no waiting for a TTL. If Redis lost the key, the first reader puts the row's version back.
"""

from __future__ import annotations

from datetime import UTC, datetime

from advanced_alchemy.config import SQLAlchemyAsyncConfig
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from podrun.policy.models import SINGLE_ROW_ID, SystemSettingsRow
from podrun.policy.values import SystemPolicy, default_policy, stored_policy
from podrun.redis_client import Keys
from podrun.settings import Settings

# The version of the environment's defaults: no admin has saved anything yet.
DEFAULTS_VERSION = 0
# Raise the announced version, never lower it: two saves may announce in either order.
_ANNOUNCE = """
local announced = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > announced then redis.call('SET', KEYS[1], ARGV[1]) end
"""


class PolicyStore:
    """The process's view of the policy; one per process (the container's)."""

    def __init__(self, settings: Settings, db: SQLAlchemyAsyncConfig, redis: Redis, keys: Keys) -> None:
        self.settings = settings
        self.db = db
        self.redis = redis
        self.keys = keys
        self._cached: tuple[int, SystemPolicy] | None = None

    async def current(self) -> SystemPolicy:
        """The policy as last saved by an admin (or the defaults)."""
        return (await self.versioned())[1]

    async def versioned(self) -> tuple[int, SystemPolicy]:
        """The policy and its version."""
        announced = await self.redis.get(self.keys.policy_version)
        if self._cached is not None and announced is not None and int(announced) == self._cached[0]:
            return self._cached
        loaded = await self._load()
        if announced is None or int(announced) < loaded[0]:
            await self._announce(loaded[0])  # Redis lost the key, or a save announced late
        self._cached = loaded
        return loaded

    async def save(self, policy: SystemPolicy) -> int:
        """Store `policy` as the current one and announce its version; returns the new version."""
        values = policy.model_dump(mode="json")
        statement = (
            insert(SystemSettingsRow)
            .values(id=SINGLE_ROW_ID, version=DEFAULTS_VERSION + 1, policy=values, updated_at=datetime.now(UTC))
            .on_conflict_do_update(
                index_elements=[SystemSettingsRow.id],
                set_={
                    "version": SystemSettingsRow.version + 1,
                    "policy": values,
                    "updated_at": datetime.now(UTC),
                },
            )
            .returning(SystemSettingsRow.version)
        )
        async with self.db.get_session() as session:
            version = int((await session.execute(statement)).scalar_one())
            await session.commit()
        await self._announce(version)
        self._cached = (version, policy)
        return version

    async def _announce(self, version: int) -> None:
        await self.redis.eval(_ANNOUNCE, 1, self.keys.policy_version, str(version))  # type: ignore[misc]

    async def _load(self) -> tuple[int, SystemPolicy]:
        async with self.db.get_session() as session:
            row = await session.scalar(select(SystemSettingsRow).where(SystemSettingsRow.id == SINGLE_ROW_ID))
        if row is None:
            return DEFAULTS_VERSION, default_policy(self.settings)
        return row.version, stored_policy(row.policy, default_policy(self.settings))
