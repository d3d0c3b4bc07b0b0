"""Which workers are alive: each refreshes a heartbeat key that expires when it stops."""

from __future__ import annotations

from redis.asyncio import Redis

from podrun.redis_client import Keys


class Heartbeats:
    """Workers' heartbeat keys in Redis."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def beat(self, worker_id: str, ttl_s: int) -> None:
        """Say this worker is alive for the next `ttl_s` seconds."""
        await self.redis.set(self.keys.worker(worker_id), "1", ex=ttl_s)

    async def stop(self, worker_id: str) -> None:
        """Say this worker is gone."""
        await self.redis.delete(self.keys.worker(worker_id))

    async def alive(self, worker_id: str | None) -> bool:
        """Whether the worker with this id still refreshes its heartbeat."""
        return worker_id is not None and bool(await self.redis.exists(self.keys.worker(worker_id)))
