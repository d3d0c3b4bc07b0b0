"""The two output streams a script writes."""

from __future__ import annotations

import enum


class Stream(enum.StrEnum):
    """stdout or stderr."""

    STDOUT = "STDOUT"
    STDERR = "STDERR"
