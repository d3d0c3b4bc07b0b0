"""The kernels table: one row per kernel, from its start to its end."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Enum, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from podrun.core.limits import Limits
from podrun.core.statuses import KernelStatus
from podrun.executions.models import LimitsColumn


class Kernel(UUIDv7AuditBase):
    """A kernel: its owner, runtime and limits, where it is in its life, and the worker holding its sandbox."""

    __tablename__ = "kernels"
    __table_args__ = (Index("ix_kernels_owner_id_id", "owner_id", "id"), Index("ix_kernels_status", "status"))

    owner_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    runtime: Mapped[str] = mapped_column(String(64))
    # Memory and processes hold for the whole kernel; wall and CPU time for each cell.
    limits: Mapped[Limits] = mapped_column(LimitsColumn())
    idle_timeout_s: Mapped[int] = mapped_column(Integer)
    status: Mapped[KernelStatus] = mapped_column(
        Enum(KernelStatus, native_enum=False, length=16), default=KernelStatus.STARTING
    )
    error: Mapped[str | None] = mapped_column(Text)
    # When its last cell ended (or it became idle): its idle timeout counts from here.
    last_used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # The worker holding its sandbox (its heartbeat tells whether it is alive), once one has claimed it.
    worker_id: Mapped[str | None] = mapped_column(String(64))
    # What its owner asked of it that its worker has not done yet: "STOP" or "RESTART".
    request: Mapped[str | None] = mapped_column(String(16))
    # Cells run so far in its current sandbox: the next cell's number (restart starts again at 1).
    cells_run: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
