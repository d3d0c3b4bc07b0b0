"""The worker's side of a run's rows and keys: claim, take over, mark running, store an artifact, finish.

Each step opens its own session, does one short transaction and closes it, so no transaction is ever held
open across a sandbox start or any other wait; a step retried after an outage starts from a fresh session.
Every status change is a compare-and-set (repository.py): a run is claimed once, and ended once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from uuid import UUID

from advanced_alchemy.config import SQLAlchemyAsyncConfig
from arq.connections import ArqRedis
from sqlalchemy.orm import undefer

from podrun.core.statuses import ACTIVE, ExecutionStatus
from podrun.executions import archive, ending
from podrun.executions.artifacts import ArtifactRepository
from podrun.executions.models import Artifact, Execution
from podrun.executions.outcomes import Outcome
from podrun.executions.queue import RunQueue
from podrun.executions.repository import ExecutionRepository, now
from podrun.fair_queue import QueuedRun
from podrun.redis_client import Keys
from podrun.runners.base import ArtifactOutput
from podrun.settings import Settings
from podrun.streams.control import ControlStream
from podrun.streams.log import EventLog, LogWriter


class RunLifecycle:
    """The state changes a worker makes to the runs it holds, each in its own short transaction.

    One per process (the container's), shared by every job: it holds no session, only how to open one.
    """

    def __init__(self, db: SQLAlchemyAsyncConfig, redis: ArqRedis, keys: Keys, settings: Settings) -> None:
        self.db = db
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.queue = RunQueue(redis, keys)

    @asynccontextmanager
    async def _rows(self, *, one_statement: bool = False) -> AsyncIterator[ExecutionRepository]:
        """The execution rows, in a session of their own closed when the step is done.

        A step of `one_statement` runs it without BEGIN and COMMIT: a statement is atomic by itself, and it
        is then one round trip instead of three (the claim and the mark, on every run's way to its first line).
        """
        async with self.db.get_session() as session:
            if one_statement:
                await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            yield ExecutionRepository(session=session)

    async def claim(self, execution_id: UUID, worker_id: str) -> Execution | None:
        """QUEUED -> STARTING for this worker, and free the run's slot of the queue cap: the run as claimed, its
        input files loaded (one statement before the sandbox starts); None if it was not QUEUED."""
        async with self._rows(one_statement=True) as rows:
            claimed = await rows.claim(execution_id, worker_id)
        if claimed is not None:
            await self.queue.left_queue(execution_id)
        return claimed

    async def take_over(self, execution_id: UUID, dead_worker_id: str, worker_id: str) -> bool:
        """Move a started run from a dead worker to this one; False if another did already (or it ended)."""
        async with self._rows(one_statement=True) as rows:
            return await rows.take_over(execution_id, dead_worker_id, worker_id)

    async def load(self, execution_id: UUID) -> Execution | None:
        """The run's row as it is now, with its input files (detached: its output columns are not loaded); None if
        it is gone."""
        async with self._rows() as rows:
            return await rows.get_one_or_none(Execution.id == execution_id, load=[undefer(Execution.files)])

    async def mark_running(self, execution_id: UUID) -> bool:
        """STARTING -> RUNNING (its sandbox is up); False if the run ended meanwhile (it was cancelled)."""
        async with self._rows(one_statement=True) as rows:
            return await rows.mark_running(execution_id, now())

    async def store_artifact(self, execution_id: UUID, output: ArtifactOutput) -> Artifact:
        """Store an artifact the run produced, counted in its storage, and commit it (it can be downloaded once
        its event is out)."""
        async with self.db.get_session() as session:
            return await ArtifactRepository(session=session).store(
                execution_id, output.name, output.media_type, output.data
            )

    async def finish(
        self,
        execution_id: UUID,
        outcome: Outcome,
        writer: LogWriter,
        from_statuses: Collection[ExecutionStatus] = ACTIVE,
    ) -> bool:
        """End a run (executions/ending.py); False, and nothing changed, if it was not in `from_statuses`."""
        # A small log is stored by one statement (repository.py), a large one in a transaction.
        async with self._rows(one_statement=not archive.stages(writer.entries)) as rows:
            return await ending.finish(
                rows,
                self.queue,
                writer,
                execution_id,
                outcome,
                log_retention_s=self.settings.log_retention_s,
                from_statuses=from_statuses,
            )

    async def started(self) -> Sequence[Execution]:
        """Every run a worker holds (STARTING or RUNNING)."""
        async with self._rows() as rows:
            return await rows.started()

    async def queued_before(self, moment: datetime) -> list[QueuedRun]:
        """Runs still QUEUED that were submitted before `moment`."""
        async with self._rows() as rows:
            return await rows.queued_before(moment)

    def event_log(self, execution_id: UUID) -> EventLog:
        """The Redis event log of one run."""
        return EventLog(self.redis, self.keys, execution_id)

    def control(self, execution_id: UUID) -> ControlStream:
        """The control stream of one run (its cancel, stdin and EOF)."""
        return ControlStream(self.redis, self.keys, execution_id)
