"""The execution rows: the only code that writes them, and the queries the rules need.

Every state change is one conditional UPDATE that names the statuses it moves from, so two actors
(a worker and a cancel, two workers after a crash) can never both win, and a row is never half
written: the final one writes the outcome and the archived log in one transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, NamedTuple, cast
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import (
    BigInteger,
    Table,
    Text,
    Update,
    bindparam,
    delete,
    func,
    insert,
    inspect,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_scoped_session
from sqlalchemy.orm import make_transient_to_detached, undefer
from uuid_utils.compat import uuid7

from podrun.accounts.models import Role, User
from podrun.core.output import Stream
from podrun.core.statuses import ACTIVE, STARTED, TERMINAL, ExecutionStatus
from podrun.executions.archive import ArchivedLog
from podrun.executions.models import Execution, ExecutionLog
from podrun.executions.outcomes import Outcome
from podrun.fair_queue import QueuedRun
from podrun.runners.base import InputFile
from podrun.streams.events import Entry


@dataclass(frozen=True, slots=True)
class RunCounts:
    """How many runs of one user wait for a worker, and how many a worker holds."""

    queued: int = 0
    running: int = 0


@dataclass(frozen=True, slots=True)
class Deleted:
    """A run just deleted: whose it was and the storage it gave back."""

    execution_id: UUID
    owner_id: UUID
    stored_bytes: int


# The ORM's own bookkeeping column for batched inserts: never written by hand.
SENTINEL = "sa_orm_sentinel"

# The tables, not the entities, in the worker's updates: the ORM's bulk-update path costs more than the statement.
_EXECUTIONS = cast(Table, Execution.__table__)
_USERS = cast(Table, User.__table__)
_LOGS = cast(Table, ExecutionLog.__table__)
_ENDED = (_EXECUTIONS.c.id, _EXECUTIONS.c.owner_id, _EXECUTIONS.c.runtime, _EXECUTIONS.c.started_at)
_LOG_COLUMNS = ["id", "execution_id", "events", "created_at", "updated_at"]
_OWNER_AND_STATUS = select(_EXECUTIONS.c.owner_id, _EXECUTIONS.c.status).where(_EXECUTIONS.c.id == bindparam("id"))


class Ended(NamedTuple):
    """What the end of a run tells besides its outcome: whose it was, its runtime and when it started."""

    owner_id: UUID
    runtime: str
    started_at: datetime | None


def now() -> datetime:
    """The current time, as rows record it."""
    return datetime.now(UTC)


class ExecutionRepository(SQLAlchemyAsyncRepository[Execution]):
    """Execution rows, and the storage counter of their owners (users.storage_bytes), changed in the same
    transactions: a submission, a finish, an artifact and a deletion each move it by the bytes they add or free."""

    model_type = Execution

    async def insert_reserving(self, execution: Execution, cap: int) -> bool:
        """Insert a new run and count its `stored_bytes` against its owner's storage if that stays within `cap`,
        in one statement, committed (atomic by itself: no BEGIN, no COMMIT, one round trip); False, and nothing
        written, if it would not. `execution` gets every column's value and is left as if loaded (detached)."""
        values = _column_values(execution)
        parameters = {f"new_{name}": value for name, value in values.items()}
        parameters |= {"reserve_owner": execution.owner_id, "reserve_size": execution.stored_bytes, "reserve_cap": cap}
        await self.session.commit()  # what was read before (an idempotency key's lookup): nothing to keep open
        async with autocommit(self.session) as connection:
            inserted = (await connection.execute(_insert_reserving(), parameters)).scalar()
        if inserted is None:
            return False
        make_transient_to_detached(execution)
        return True

    async def owner_and_status(self, execution_id: UUID) -> tuple[UUID, ExecutionStatus] | None:
        """Whose a run is and its status, in one statement outside the session (no transaction); None if there is
        no such run."""
        async with autocommit(self.session) as connection:
            row = (await connection.execute(_OWNER_AND_STATUS, {"id": execution_id})).first()
        return None if row is None else (row[0], row[1])

    async def storage_held(self, owner_id: UUID) -> int:
        """The bytes a user's runs hold."""
        return int(await self.session.scalar(select(User.storage_bytes).where(User.id == owner_id)) or 0)

    async def delete_ended(self, execution_id: UUID) -> Deleted | None:
        """Delete an ended run with its archived log and artifacts (the foreign keys cascade) and give its bytes
        back to its owner, in one transaction; None if there is no such ended run (gone, or still active)."""
        statement = (
            delete(Execution)
            .where(Execution.id == execution_id, Execution.status.in_(TERMINAL))
            .returning(Execution.owner_id, Execution.stored_bytes)
        )
        row = (await self.session.execute(statement)).first()
        if row is None:
            await self.session.rollback()
            return None
        deleted = Deleted(execution_id, row[0], int(row[1]))
        await self._give_back({deleted.owner_id: deleted.stored_bytes})
        await self.session.commit()
        return deleted

    async def delete_expired(self, role: Role, finished_before: datetime, batch: int) -> list[Deleted]:
        """Delete up to `batch` runs of `role`'s users that finished before `finished_before`, in one transaction.

        Only ended runs have `finished_at`; rows another sweeper is deleting are skipped, not waited for.
        """
        expired = (
            select(Execution.id)
            .join(User, User.id == Execution.owner_id)
            .where(User.role == role, Execution.finished_at < finished_before, Execution.status.in_(TERMINAL))
            .limit(batch)
            .with_for_update(of=Execution, skip_locked=True)
        )
        statement = (
            delete(Execution)
            .where(Execution.id.in_(expired.scalar_subquery()))
            .returning(Execution.id, Execution.owner_id, Execution.stored_bytes)
        )
        deleted = [Deleted(row[0], row[1], int(row[2])) for row in await self.session.execute(statement)]
        freed: dict[UUID, int] = {}
        for run in deleted:
            freed[run.owner_id] = freed.get(run.owner_id, 0) + run.stored_bytes
        await self._give_back(freed)
        await self.session.commit()
        return deleted

    async def add_stored(self, execution_id: UUID, size: int) -> None:
        """Count `size` more bytes for a run and its owner (not committed: the caller's change commits it)."""
        statement = (
            update(Execution)
            .where(Execution.id == execution_id)
            .values(stored_bytes=Execution.stored_bytes + size)
            .returning(Execution.owner_id)
        )
        owner_id = (await self.session.execute(statement)).scalar_one_or_none()
        if owner_id is not None:
            await self.session.execute(
                update(User).where(User.id == owner_id).values(storage_bytes=User.storage_bytes + size)
            )

    async def _give_back(self, freed: dict[UUID, int]) -> None:
        # In id order, so two transactions giving back to the same users never wait on each other in a cycle.
        for owner_id in sorted(freed):
            await self.session.execute(
                update(User)
                .where(User.id == owner_id)
                .values(storage_bytes=func.greatest(User.storage_bytes - freed[owner_id], 0))
            )

    async def claim(self, execution_id: UUID, worker_id: str) -> Execution | None:
        """QUEUED -> STARTING for this worker, and the row as claimed with its input files, in one statement;
        None if the run is not QUEUED any more."""
        statement = (
            update(Execution)
            .where(Execution.id == execution_id, Execution.status == ExecutionStatus.QUEUED)
            .values(status=ExecutionStatus.STARTING, worker_id=worker_id, attempts=Execution.attempts + 1)
            .returning(Execution)
            .options(undefer(Execution.files))
            .execution_options(synchronize_session=False)
        )
        claimed = (await self.session.scalars(statement)).one_or_none()
        await self.session.commit()
        return claimed

    async def take_over(self, execution_id: UUID, dead_worker_id: str, worker_id: str) -> bool:
        """Move a started run from a dead worker to this one; False if another did already (or it ended)."""
        statement = (
            update(_EXECUTIONS)
            .where(
                _EXECUTIONS.c.id == execution_id,
                _EXECUTIONS.c.worker_id == dead_worker_id,
                _EXECUTIONS.c.status.in_(STARTED),
            )
            .values(worker_id=worker_id, attempts=_EXECUTIONS.c.attempts + 1)
            .returning(_EXECUTIONS.c.id)
        )
        return await self._commit(statement)

    async def mark_running(self, execution_id: UUID, started_at: datetime) -> bool:
        """STARTING -> RUNNING; False if the run ended meanwhile."""
        return await self._move(
            execution_id, (ExecutionStatus.STARTING,), status=ExecutionStatus.RUNNING, started_at=started_at
        )

    async def finish(
        self,
        execution_id: UUID,
        outcome: Outcome,
        *,
        finished_at: datetime,
        entries: list[Entry],
        from_statuses: Collection[ExecutionStatus] = ACTIVE,
    ) -> Ended | None:
        """Record the outcome, the output and the whole event log `entries`, committed; the run's owner, runtime and
        start, or None (and nothing changed) if the run was not in `from_statuses`.

        A small log is one statement: the run's UPDATE, its owner's storage and the archive's INSERT as CTEs (one
        round trip, atomic by itself). A large one is staged first (executions/archive.py), in one transaction.
        """
        log = ArchivedLog(entries)
        ended = (
            update(_EXECUTIONS)
            .where(_EXECUTIONS.c.id == execution_id, _EXECUTIONS.c.status.in_(from_statuses))
            .values(_ended_values(outcome, finished_at))
        )
        if log.staged:
            return await self._finish_staged(execution_id, ended, log)
        output = log.output()
        # Its size in SQL, over the same parameters: the stored count matches what the columns hold.
        stdout, stderr = bindparam("stdout", output["stdout"], Text()), bindparam("stderr", output["stderr"], Text())
        size = func.octet_length(stdout) + func.octet_length(stderr)
        row = (
            ended.values(stdout=stdout, stderr=stderr, stored_bytes=_EXECUTIONS.c.stored_bytes + size)
            .returning(*_ENDED, size.label("stored"))
            .cte("ended")
        )
        counted = (
            update(_USERS)
            .where(_USERS.c.id == row.c.owner_id)
            .values(storage_bytes=_USERS.c.storage_bytes + row.c.stored, updated_at=func.now())
            .cte("counted")
        )
        archived = (
            insert(_LOGS)
            .from_select(_LOG_COLUMNS, select(literal(uuid7()), row.c.id, log.events(), func.now(), func.now()))
            .cte("archived")
        )
        statement = select(row.c.owner_id, row.c.runtime, row.c.started_at).add_cte(counted, archived)
        result = (await self.session.execute(statement)).one_or_none()
        await self.session.commit()
        return None if result is None else Ended(*result)

    async def _finish_staged(self, execution_id: UUID, ended: Update, log: ArchivedLog) -> Ended | None:
        """`finish` for a large log: the status first (a finish that loses the race sends nothing), then the staged
        output and archive, in one transaction."""
        row = (await self.session.execute(ended.returning(*_ENDED))).one_or_none()
        if row is None:
            await self.session.rollback()
            return None
        await log.stage(self.session)
        output_bytes = func.octet_length(Execution.stdout) + func.octet_length(Execution.stderr)
        with_output = update(Execution).where(Execution.id == execution_id).values(**log.output())
        stored = (await self.session.execute(with_output.returning(output_bytes))).scalar_one()
        await self.add_stored(execution_id, stored)
        await self.session.execute(insert(ExecutionLog).values(execution_id=execution_id, events=log.events()))
        await self.session.commit()
        return Ended(*row[1:])

    async def archived_events(self, execution_id: UUID) -> list[dict[str, Any]] | None:
        """The archived log of a finished run; None while it has not finished."""
        return await self.session.scalar(select(ExecutionLog.events).where(ExecutionLog.execution_id == execution_id))

    async def output(self, execution_id: UUID, stream: Stream) -> str:
        """The archived output of an ended run on one stream (a deferred column: read only when asked for)."""
        column = Execution.stdout if stream is Stream.STDOUT else Execution.stderr
        return await self.session.scalar(select(column).where(Execution.id == execution_id)) or ""

    async def output_bytes(self, execution_id: UUID, stream: Stream) -> int:
        """The size in bytes of an ended run's output on one stream, without reading it."""
        column = Execution.stdout if stream is Stream.STDOUT else Execution.stderr
        size = await self.session.scalar(select(func.octet_length(column)).where(Execution.id == execution_id))
        return int(size or 0)

    async def input_files_of(self, execution_ids: Sequence[UUID]) -> dict[UUID, list[InputFile]]:
        """The input files of each of these runs, in one query."""
        query = select(Execution.id, Execution.files).where(Execution.id.in_(execution_ids))
        return {execution_id: files or [] for execution_id, files in await self.session.execute(query)}

    async def started(self) -> Sequence[Execution]:
        """Every run a worker holds (STARTING or RUNNING)."""
        return (await self.session.scalars(select(Execution).where(Execution.status.in_(STARTED)))).unique().all()

    async def queued_before(self, moment: datetime) -> list[QueuedRun]:
        """Runs still QUEUED that were submitted before `moment`, as the scheduler queues them."""
        query = select(Execution.id, Execution.owner_id, Execution.limits, Execution.created_at).where(
            # A kernel's cells wait for their kernel, not in the queue.
            Execution.status == ExecutionStatus.QUEUED,
            Execution.created_at < moment,
            Execution.kernel_id.is_(None),
        )
        rows = await self.session.execute(query)
        return [QueuedRun(row.id, row.owner_id, row.limits.memory_mib, row.created_at) for row in rows]

    async def run_counts(self, owner_ids: Collection[UUID]) -> dict[UUID, RunCounts]:
        """Queued and running (STARTING or RUNNING) runs of each of `owner_ids`, in one query."""
        if not owner_ids:
            return {}
        query = (
            select(Execution.owner_id, Execution.status, func.count())
            .where(Execution.owner_id.in_(owner_ids), Execution.status.in_(ACTIVE))
            .group_by(Execution.owner_id, Execution.status)
        )
        queued: dict[UUID, int] = {}
        running: dict[UUID, int] = {}
        for owner_id, status, count in await self.session.execute(query):
            tally = queued if status is ExecutionStatus.QUEUED else running
            tally[owner_id] = tally.get(owner_id, 0) + count
        return {owner: RunCounts(queued.get(owner, 0), running.get(owner, 0)) for owner in owner_ids}

    async def ended_among(self, execution_ids: Collection[UUID]) -> Sequence[UUID]:
        """Those of `execution_ids` whose run has ended (ids without a row are not among them)."""
        if not execution_ids:
            return []
        query = select(Execution.id).where(Execution.id.in_(execution_ids), Execution.status.not_in(ACTIVE))
        return (await self.session.scalars(query)).all()

    async def page(
        self, user: User, first: int, before: UUID | None, status: ExecutionStatus | None, owner_id: UUID | None
    ) -> list[Execution]:
        """Up to `first` runs `user` may see (of `owner_id` only, if given), newest first, older than `before`."""
        query = select(Execution).order_by(Execution.id.desc()).limit(first)
        if user.role is not Role.ADMIN:
            query = query.where(Execution.owner_id == user.id)
        if owner_id is not None:
            query = query.where(Execution.owner_id == owner_id)
        if status is not None:
            query = query.where(Execution.status == status)
        if before is not None:
            query = query.where(Execution.id < before)
        return list((await self.session.scalars(query)).unique())

    async def _move(self, execution_id: UUID, from_statuses: Collection[ExecutionStatus], **values: object) -> bool:
        statement = (
            update(_EXECUTIONS)
            .where(_EXECUTIONS.c.id == execution_id, _EXECUTIONS.c.status.in_(from_statuses))
            .values(**values)
            .returning(_EXECUTIONS.c.id)
        )
        return await self._commit(statement)

    async def _commit(self, statement: Any) -> bool:
        changed = (await self.session.execute(statement)).scalar_one_or_none()
        await self.session.commit()
        return changed is not None


@asynccontextmanager
async def autocommit(session: AsyncSession | async_scoped_session[AsyncSession]) -> AsyncIterator[AsyncConnection]:
    """A pooled connection of the session's engine, outside the session and in autocommit: a statement on it is one
    round trip (no BEGIN, no COMMIT or ROLLBACK) and skips the ORM's bookkeeping."""
    engine = cast(AsyncEngine, session.bind)
    async with engine.connect() as connection:
        yield await connection.execution_options(isolation_level="AUTOCOMMIT")


def _column_values(execution: Execution) -> dict[str, Any]:
    """Every column of a new run by name: its value, or the column's default (set on `execution` too)."""
    values: dict[str, Any] = {}
    moment = datetime.now(UTC)
    for attribute in inspect(Execution).column_attrs:
        column = attribute.columns[0]
        if column.name == SENTINEL:
            continue
        if attribute.key not in execution.__dict__:
            default = column.default
            if attribute.key in {"created_at", "updated_at"}:
                value: Any = moment
            elif default is not None and default.is_scalar:
                value = default.arg
            else:
                value = None
            setattr(execution, attribute.key, value)
        values[column.name] = getattr(execution, attribute.key)
    return values


@cache
def _insert_reserving() -> Any:
    """INSERT … SELECT from the owner's storage UPDATE (a CTE): a row only if the reservation took. Built once, its
    values bound by name (`new_<column>`, and `reserve_owner`, `reserve_size`, `reserve_cap`)."""
    size = bindparam("reserve_size", type_=BigInteger())
    reserved = (
        update(User)
        .where(User.id == bindparam("reserve_owner"), User.storage_bytes + size <= bindparam("reserve_cap"))
        # updated_at given here: its Python default is not run for an UPDATE inside an INSERT's CTE.
        .values(storage_bytes=User.storage_bytes + size, updated_at=func.now())
        .returning(User.id)
        .cte("reserved")
    )
    # The table, not the entity: an ORM insert given a dict of values would take it for a bulk insert.
    table = cast(Table, Execution.__table__)
    names = [column.name for column in table.c if column.name != SENTINEL]
    # Named apart from the columns: an INSERT keeps its columns' names for its own parameters.
    row = select(*(bindparam(f"new_{name}", type_=table.c[name].type) for name in names)).select_from(reserved)
    return insert(table).from_select(names, row, include_defaults=False).returning(table.c.id)


def _ended_values(outcome: Outcome, finished_at: datetime) -> dict[str, Any]:
    """The columns an ending writes besides the output (updated_at given: a CTE's UPDATE runs no Python default)."""
    return {
        "status": outcome.status,
        "finished_at": finished_at,
        "exit_code": outcome.exit_code,
        "signal": outcome.signal,
        "limit_exceeded": outcome.limit_exceeded,
        "error": outcome.error,
        "usage_wall_time_ms": outcome.usage.wall_time_ms,
        "usage_cpu_time_ms": outcome.usage.cpu_time_ms,
        "usage_peak_memory_kib": outcome.usage.peak_memory_kib,
        "output_truncated": outcome.output_truncated,
        "updated_at": finished_at,
    }
