"""The system-settings table: one row, what an admin last saved."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from advanced_alchemy.base import DefaultBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

# The table holds at most this one row; its fixed key makes a first save by two admins an upsert, not a race.
SINGLE_ROW_ID = 1


class SystemSettingsRow(DefaultBase):
    """The policy (policy/values.py) as JSON, and a version that grows with every change."""

    __tablename__ = "system_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    policy: Mapped[dict[str, Any]] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
