"""Pagination cursors: opaque to clients, and anything but our own (of the same kind) is BAD_USER_INPUT."""

from __future__ import annotations

import base64
import uuid

import pytest

from podrun.core.errors import BadUserInput
from podrun.core.pages import decode_cursor, encode_cursor


def test_a_cursor_points_back_at_its_row() -> None:
    row_id = uuid.uuid4()
    assert decode_cursor(encode_cursor("execution", row_id), "execution") == row_id


def test_execution_cursors_are_what_they_were() -> None:
    row_id = uuid.uuid4()
    assert encode_cursor("execution", row_id) == base64.urlsafe_b64encode(f"execution:{row_id}".encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64 at all!",
        base64.urlsafe_b64encode(b"execution:not-a-uuid").decode(),
        base64.urlsafe_b64encode(f"user:{uuid.uuid4()}".encode()).decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
    ids=["empty", "garbage", "bad-uuid", "other-kind", "not-utf8"],
)
def test_foreign_cursors_are_bad_user_input(cursor: str) -> None:
    with pytest.raises(BadUserInput, match="after is not a valid cursor"):
        decode_cursor(cursor, "execution")
