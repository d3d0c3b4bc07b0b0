"""Whether PostgreSQL and Redis answer, probed from each process: podrun_dependency_up and the outages counter."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import structlog

from podrun import tasks
from podrun.observability.metrics import DEPENDENCY_OUTAGES, DEPENDENCY_UP

log = structlog.get_logger(__name__)

PROBE_INTERVAL_S = 5.0
PROBE_TIMEOUT_S = 3.0

Probe = Callable[[], Awaitable[object]]


class DependencyWatch:
    """Probes each service every PROBE_INTERVAL_S; a service that stops answering counts one outage until it is back."""

    def __init__(self, probes: Mapping[str, Probe]) -> None:
        self.probes = probes
        for service in probes:
            DEPENDENCY_OUTAGES.labels(service=service)  # zero from the start, so rate() sees the first outage
        self.up: dict[str, bool] = {}
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Probe in the background from now on."""
        self.task = asyncio.create_task(self._probe_forever(), name="dependency-watch")

    async def stop(self) -> None:
        """Stop probing."""
        if self.task is not None:
            await tasks.stop(self.task)

    async def probe_once(self) -> None:
        """Probe every service once and record what answered."""
        for service, probe in self.probes.items():
            try:
                await asyncio.wait_for(probe(), PROBE_TIMEOUT_S)
                up = True
            except Exception as exc:
                up = False
                if self.up.get(service, True):
                    log.warning("dependency down", service=service, error=type(exc).__name__)
            if self.up.get(service, True) and not up:
                DEPENDENCY_OUTAGES.labels(service=service).inc()
            elif not self.up.get(service, True) and up:
                log.info("dependency back", service=service)
            self.up[service] = up
            DEPENDENCY_UP.labels(service=service).set(1 if up else 0)

    async def _probe_forever(self) -> None:
        while True:
            await self.probe_once()
            await asyncio.sleep(PROBE_INTERVAL_S)
