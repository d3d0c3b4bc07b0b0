"""The user table."""

from __future__ import annotations

from typing import Any

from advanced_alchemy.base import UUIDv7AuditBase
from sqlalchemy import BigInteger, Enum, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from podrun.core.roles import Role

__all__ = ["Role", "User"]


class User(UUIDv7AuditBase):
    """An account. Emails are stored lower-cased, so uniqueness ignores case."""

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16), default=Role.USER)
    # A disabled account cannot sign in, and its tokens stop working at once.
    disabled: Mapped[bool] = mapped_column(default=False, server_default="false")
    # Tokens carry the version they were issued at; bumping it (disable, password reset) revokes them all.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The user's settings (accounts/preferences.py), as they last saved them.
    preferences: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    # The bytes the user's runs hold, kept in the transactions that change them (executions/repository.py).
    storage_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
