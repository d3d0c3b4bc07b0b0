"""The one Redis client factory. Every Redis key Podrun uses is built here too."""

from __future__ import annotations

import os
from uuid import UUID

from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import BlockingConnectionPool

from podrun.settings import Settings

# Longer than any blocking read Podrun issues (the hub blocks 5 s at most).
SOCKET_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 2.0


def redis_settings(settings: Settings) -> RedisSettings:
    """arq's connection settings for our Redis, with a bounded pool."""
    redis = RedisSettings.from_dsn(settings.redis_url)
    redis.max_connections = settings.redis_max_connections
    return redis


async def create_redis(settings: Settings, role: str) -> ArqRedis:
    """A pooled client that can both enqueue jobs and run plain Redis commands.

    The pool is bounded and blocking: however many subscriptions or jobs a process serves, it
    holds at most `redis_max_connections` connections, and a burst waits instead of failing.
    """
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=30,
        # A stopped Redis fails calls at once; one that hangs fails them after this, so nothing waits forever.
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        # Named so operators (and tests) can count a process's connections in CLIENT LIST.
        client_name=f"{settings.redis_prefix}-{role}-{os.getpid()}",
    )
    redis = ArqRedis(pool, default_queue_name=Keys(settings.redis_prefix).queue)
    await redis.ping()
    return redis


class Keys:
    """Names of Podrun's Redis keys, all under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @property
    def queue(self) -> str:
        """The arq job queue."""
        return f"{self.prefix}:queue"

    def events(self, execution_id: UUID) -> str:
        """The seq-numbered event log of one execution (a Redis stream)."""
        return f"{self.prefix}:events:{execution_id}"

    def control(self, execution_id: UUID) -> str:
        """Commands for the worker running one execution: stdin data, EOF, cancel (a Redis stream)."""
        return f"{self.prefix}:control:{execution_id}"

    def input_window(self, execution_id: UUID) -> str:
        """Stdin bytes of one execution accepted and delivered into its sandbox so far (a hash; streams/control.py)."""
        return f"{self.prefix}:input:{execution_id}"

    def kernel_wake(self, kernel_id: UUID | str) -> str:
        """The channel the API publishes on when a kernel has something to do (a cell, a stop, a restart)."""
        return f"{self.prefix}:kernel-wake:{kernel_id}"

    def interrupt(self, execution_id: UUID) -> str:
        """Set while a kernel's cell is being interrupted (a second interrupt is refused)."""
        return f"{self.prefix}:interrupt:{execution_id}"

    def worker(self, worker_id: str) -> str:
        """A worker's heartbeat; it expires when the worker stops refreshing it."""
        return f"{self.prefix}:worker:{worker_id}"

    def rate(self, action: str, subject: str) -> str:
        """A rate-limit counter for one action by one subject (user id, email)."""
        return f"{self.prefix}:rate:{action}:{subject}"

    def sign_in(self, part: str, email: str) -> str:
        """One part of an account's sign-in failures: `failures`, `clients` (that failed) or `lock`."""
        return f"{self.prefix}:signin:{part}:{email}"

    @property
    def policy_version(self) -> str:
        """The version of the system settings last saved: processes reload theirs when it moves."""
        return f"{self.prefix}:policy:version"

    @property
    def sign_ins_revoked(self) -> str:
        """The channel that names each sign-in just revoked: API processes close its sockets."""
        return f"{self.prefix}:sign-ins:revoked"

    def active_runs(self, user_id: str) -> str:
        """The runs one user has in progress (a sorted set: execution id -> when the entry lapses)."""
        return f"{self.prefix}:quota:active:{user_id}"

    @property
    def queued_runs(self) -> str:
        """The runs waiting for a worker, of all users (a sorted set: execution id -> when the entry lapses)."""
        return f"{self.prefix}:quota:queued"

    @property
    def fair_users(self) -> str:
        """The users with runs waiting for a worker (a sorted set; see fair_queue.py)."""
        return f"{self.prefix}:fair:users"

    def fair_queued(self, user_id: str) -> str:
        """One user's runs waiting for a worker (a sorted set: execution id -> when it was queued, in ms)."""
        return f"{self.prefix}:fair:queued:{user_id}"

    def fair_running(self, user_id: str) -> str:
        """One user's runs a worker claimed and that have not ended (a sorted set: execution id -> lapse, in ms)."""
        return f"{self.prefix}:fair:running:{user_id}"

    @property
    def fair_handovers(self) -> str:
        """Jobs that take over a run from a dead worker (a sorted set: job id -> when it was queued, in ms)."""
        return f"{self.prefix}:fair:handovers"

    @property
    def fair_need(self) -> str:
        """The memory limit (MiB) of each waiting run (a hash), so a claim takes only runs that fit."""
        return f"{self.prefix}:fair:need"

    @property
    def queue_wake(self) -> str:
        """The channel a job's enqueuer publishes on, so an idle worker picks the job up at once."""
        return f"{self.prefix}:queue:wake"

    @property
    def health(self) -> str:
        """arq's health-check key."""
        return f"{self.prefix}:health"
