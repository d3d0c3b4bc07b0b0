"""The user table."""

from __future__ import annotations

import enum

from advanced_alchemy.base import UUIDv7AuditBase
from sqlalchemy import Enum, String
from sqlalchemy.orm import Mapped, mapped_column


class Role(enum.StrEnum):
    """What a user may see: their own executions, or everyone's."""

    USER = "USER"
    ADMIN = "ADMIN"


class User(UUIDv7AuditBase):
    """An account. Emails are stored lower-cased, so uniqueness ignores case."""

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16), default=Role.USER)
