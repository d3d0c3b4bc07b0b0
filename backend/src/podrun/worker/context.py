"""What the jobs of one worker process share, and arq's job context as Podrun uses it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from podrun.container import Container


@dataclass(frozen=True)
class WorkerProcess:
    """This worker: its container and the id its heartbeat and claimed runs carry."""

    container: Container
    worker_id: str


class JobContext(TypedDict):
    """The part of arq's per-job `ctx` dict that Podrun puts there at start-up."""

    podrun: WorkerProcess
