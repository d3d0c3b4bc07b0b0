"""Checks of text a client sends: valid Unicode, no NUL, within a size in bytes."""

from __future__ import annotations

from podrun.core.errors import BadUserInput


def storable(value: str) -> bool:
    """Whether PostgreSQL can hold `value` as text: valid Unicode (no lone surrogate) and no NUL."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def check_text(name: str, value: str, max_bytes: int) -> None:
    """BAD_USER_INPUT (naming the field `name`) unless `value` is storable text of at most `max_bytes`."""
    try:
        size = len(value.encode())
    except UnicodeEncodeError as error:
        raise BadUserInput(f"{name} is not valid Unicode") from error
    if size > max_bytes:
        raise BadUserInput(f"{name} must be at most {max_bytes} bytes")
    if "\x00" in value:
        raise BadUserInput(f"{name} must not contain NUL characters")
