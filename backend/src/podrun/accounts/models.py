"""The user and sign-in tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Enum, ForeignKey, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from podrun.core.roles import Role

__all__ = ["Role", "SignIn", "User"]

# Longer user agents are cut here: enough to tell devices apart.
USER_AGENT_LENGTH = 512


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


class SignIn(UUIDv7AuditBase):
    """One sign-in (a login from one device): its refresh tokens descend from it and are revoked with it.

    `created_at` is when it signed in; `generation` is the number the refresh token in force carries (each
    refresh moves it on, so a token with an older number is a retired one).
    """

    __tablename__ = "sign_ins"

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Moved on by each refresh (not by each request): as precise as the access tokens' lifetime.
    last_used_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    # The client's address as ratelimit.client_address found it (None when the peer's is unknown).
    client_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_LENGTH))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # Why: one of RevokeReason's values.
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
