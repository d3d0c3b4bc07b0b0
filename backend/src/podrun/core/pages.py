"""Pagination shared by every connection: opaque cursors naming a row, and the page size allowed."""

from __future__ import annotations

import base64
import binascii
from uuid import UUID

from podrun.core.errors import BadUserInput

MAX_PAGE = 100


def check_first(first: int) -> None:
    """BAD_USER_INPUT for a page size outside 1..MAX_PAGE."""
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}")


def encode_cursor(kind: str, row_id: UUID) -> str:
    """An opaque cursor pointing at the row `row_id` of a `kind` of connection."""
    return base64.urlsafe_b64encode(f"{kind}:{row_id}".encode()).decode()


def decode_cursor(cursor: str, kind: str) -> UUID:
    """The row id a cursor of this `kind` points at; BAD_USER_INPUT for anything else."""
    try:
        found, _, raw = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        row_id = UUID(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise BadUserInput("after is not a valid cursor") from error
    if found != kind:
        raise BadUserInput("after is not a valid cursor")
    return row_id
