"""The saved-scripts table."""

from __future__ import annotations

from uuid import UUID

from advanced_alchemy.base import UUIDv7AuditBase
from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column


class Script(UUIDv7AuditBase):
    """A script a user saved to run again later; only its owner sees it."""

    __tablename__ = "scripts"
    __table_args__ = (Index("ix_scripts_owner_id_id", "owner_id", "id"),)

    owner_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    script: Mapped[str] = mapped_column(Text)
    runtime: Mapped[str] = mapped_column(String(64))
