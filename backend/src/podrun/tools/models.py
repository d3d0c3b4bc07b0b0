"""The tools tables: a tool (its slug, author and catalog entry) and its versions (each a script and its form)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Enum, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from podrun.accounts.models import User


class ToolVersionStatus(enum.StrEnum):
    """Where a version is in its review: only APPROVED versions are shown to everyone."""

    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class Tool(UUIDv7AuditBase):
    """A published tool. Its title and description are those of its latest approved version (None before one)."""

    __tablename__ = "tools"

    slug: Mapped[str] = mapped_column(String(50), unique=True)
    author_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    author: Mapped[User] = relationship(lazy="joined", innerjoin=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    # The version the catalog shows and runs by default; None while no version is approved.
    approved_version: Mapped[int | None] = mapped_column(Integer)


class ToolVersion(UUIDv7AuditBase):
    """One immutable version of a tool: a copy of the script as it was published, and its form."""

    __tablename__ = "tool_versions"
    __table_args__ = (UniqueConstraint("tool_id", "version", name="uq_tool_versions_tool_id_version"),)

    tool_id: Mapped[UUID] = mapped_column(ForeignKey("tools.id", ondelete="CASCADE"))
    tool: Mapped[Tool] = relationship(lazy="joined", innerjoin=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[ToolVersionStatus] = mapped_column(
        Enum(ToolVersionStatus, native_enum=False, length=16), default=ToolVersionStatus.PENDING, index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    script: Mapped[str] = mapped_column(Text)
    runtime: Mapped[str] = mapped_column(String(64))
    source_visible: Mapped[bool] = mapped_column(default=False)
    # The form, as validated by tools/form.py: [{"name": ..., "kind": ..., ...}] in display order.
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    note: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    reviewer_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
