"""The executions table, the archived event log of each finished run, and the artifacts runs produced."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    BigInteger,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from podrun.accounts.models import User
from podrun.core.limits import LimitKind, Limits
from podrun.core.statuses import ExecutionStatus
from podrun.runners.base import InputFile


class LimitsColumn(TypeDecorator[Limits]):
    """The `Limits` model in one JSONB column, by field name (the model is the one place they are listed)."""

    impl = JSONB
    cache_ok = True

    def process_bind_param(self, value: Limits | None, dialect: Dialect) -> dict[str, int] | None:
        """Store the model's fields."""
        return None if value is None else value.model_dump()

    def process_result_value(self, value: dict[str, int] | None, dialect: Dialect) -> Limits | None:
        """Read them back into the model."""
        return None if value is None else Limits.model_validate(value)


class InputFilesColumn(TypeDecorator[list[InputFile]]):
    """Input files in one JSONB column as [{"name": str, "content": base64}]: decoded once, when read."""

    impl = JSONB
    cache_ok = True

    def process_bind_param(self, value: list[InputFile] | None, dialect: Dialect) -> list[dict[str, str]] | None:
        """Store each file's name and base64 content."""
        return None if value is None else msgspec.to_builtins(value)

    def process_result_value(self, value: list[dict[str, str]] | None, dialect: Dialect) -> list[InputFile] | None:
        """Read them back with their bytes."""
        return None if value is None else msgspec.convert(value, list[InputFile])


class Execution(UUIDv7AuditBase):
    """One submitted script and everything known about its run."""

    __tablename__ = "executions"
    __table_args__ = (
        UniqueConstraint("owner_id", "idempotency_key", name="uq_executions_owner_idempotency_key"),
        Index("ix_executions_owner_id_id", "owner_id", "id"),
        Index("ix_executions_status", "status"),
        Index("ix_executions_finished_at", "finished_at"),
    )

    owner_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    owner: Mapped[User] = relationship(lazy="joined", innerjoin=True)
    runtime: Mapped[str] = mapped_column(String(64))
    script: Mapped[str] = mapped_column(Text)
    stdin: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    limits: Mapped[Limits] = mapped_column(LimitsColumn())
    # Input files, placed read-only beside the script.
    files: Mapped[list[InputFile] | None] = deferred(mapped_column(InputFilesColumn()))
    # The tool version this run ran (runTool), if any; its form's inputs are among the files.
    tool_version_id: Mapped[UUID | None] = mapped_column(ForeignKey("tool_versions.id", ondelete="SET NULL"))
    # The kernel this run is a cell of (runInKernel), if any: its worker runs it, in order, in that kernel.
    kernel_id: Mapped[UUID | None] = mapped_column(ForeignKey("kernels.id", ondelete="SET NULL"), index=True)

    status: Mapped[ExecutionStatus] = mapped_column(
        Enum(ExecutionStatus, native_enum=False, length=16), default=ExecutionStatus.QUEUED
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    signal: Mapped[int | None] = mapped_column(Integer)
    limit_exceeded: Mapped[LimitKind | None] = mapped_column(Enum(LimitKind, native_enum=False, length=16))
    error: Mapped[str | None] = mapped_column(Text)
    usage_wall_time_ms: Mapped[int | None] = mapped_column(Integer)
    usage_cpu_time_ms: Mapped[int | None] = mapped_column(Integer)
    usage_peak_memory_kib: Mapped[int | None] = mapped_column(Integer)
    # Loaded only by the fields that return them, within the request's output budget (graphql/output_budget.py).
    stdout: Mapped[str] = deferred(mapped_column(Text, default=""))
    stderr: Mapped[str] = deferred(mapped_column(Text, default=""))
    output_truncated: Mapped[bool] = mapped_column(default=False)

    # Which worker holds the run (its heartbeat tells whether it is alive) and how often it was claimed.
    worker_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The bytes the run holds (script, stdin, input files, output, artifacts): its share of the owner's storage.
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    @property
    def stdin_open(self) -> bool:
        """Scripts submitted with stdin get it and then EOF; without, stdin stays open for `sendInput`."""
        return self.stdin is None


class ExecutionLog(UUIDv7AuditBase):
    """The full event log of a finished run, so replays outlive the Redis copy."""

    __tablename__ = "execution_logs"

    execution_id: Mapped[UUID] = mapped_column(ForeignKey("executions.id", ondelete="CASCADE"), unique=True)
    events: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)


class Artifact(UUIDv7AuditBase):
    """A file a run produced (a figure, or a file from /tmp/outputs). It goes when its execution goes."""

    __tablename__ = "artifacts"

    execution_id: Mapped[UUID] = mapped_column(ForeignKey("executions.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    media_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    # Loaded only by a download.
    content: Mapped[bytes] = deferred(mapped_column(LargeBinary))


class ExecutionShare(UUIDv7AuditBase):
    """A run made viewable by link. Only the token's SHA-256 is kept; revoking deletes the row, and the row goes
    when its execution goes."""

    __tablename__ = "execution_shares"

    execution_id: Mapped[UUID] = mapped_column(ForeignKey("executions.id", ondelete="CASCADE"), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Whether viewers also see the run's stdin and input files (never, unless the owner said so).
    include_input: Mapped[bool] = mapped_column(default=False)
