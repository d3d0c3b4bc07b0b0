"""What a user may do: their own runs, or everyone's and the system's settings."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    """USER sees their own executions; CONTRIBUTOR may also publish tools; ADMIN sees everyone's executions,
    reviews tools and manages users and system settings."""

    USER = "USER"
    CONTRIBUTOR = "CONTRIBUTOR"
    ADMIN = "ADMIN"
