"""What every benchmark is given: the plan, the running Podrun, an HTTP pool and the bare baselines."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from bench.client import Client
from bench.plan import Plan
from bench.runs import timed_run
from bench.sandbox import BareCommands
from bench.system import Podrun

# How long the shared user's access token is used before a new user signs in (the token lasts 300 s by default).
USER_FOR_S = 120.0


@dataclass(slots=True)
class Bench:
    """The shared state of one benchmark run."""

    plan: Plan
    podrun: Podrun
    http: httpx.AsyncClient
    bare: BareCommands
    worker_concurrency: int
    default_user: Client | None = None
    default_user_since: float = 0.0

    async def user(self) -> Client:
        """A new signed-in user."""
        return await Client.register(self.http, self.podrun.base_url)

    async def first_user(self) -> Client:
        """One user for the benchmarks that need no more (registering costs a password hash), new again once its
        access token (5 minutes by default) is near its end: a whole run of the benchmark takes longer."""
        if self.default_user is None or time.monotonic() - self.default_user_since > USER_FOR_S:
            self.default_user = await self.user()
            self.default_user_since = time.monotonic()
        return self.default_user

    async def settle(self) -> None:
        """A few unmeasured runs, so a worker that just started has its pool filled before timing begins."""
        client = await self.first_user()
        socket = await client.socket()
        try:
            for _ in range(self.plan.warmup_runs):
                await timed_run(client, socket)
        finally:
            await socket.close()
