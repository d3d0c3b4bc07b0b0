"""A tool's form filled from the command line: `--set name=value` typed by the form, `--file field=path` read.

Values are only typed here, never judged: the server checks each against the form and names a wrong one,
so `prun tool` refuses exactly what the web form and the API refuse.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from podrun_client.generated import ToolFieldDetails, ToolFieldKind, ToolFileInput

_TRUE = frozenset({"true", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "no", "n", "0", "off"})


class FormError(Exception):
    """A `--set` or `--file` that is not of the form name=value, or a file that cannot be read."""


def values(settings: Sequence[str], fields: Sequence[ToolFieldDetails]) -> dict[str, Any]:
    """The `--set name=value` options as the form's values: a NUMBER a number, a BOOLEAN true or false."""
    kinds = {field.name: field.kind for field in fields}
    typed: dict[str, Any] = {}
    for setting in settings:
        name, value = _pair(setting, "--set", "name=value")
        typed[name] = _typed(value, kinds.get(name))
    return typed


def files(options: Sequence[str]) -> list[ToolFileInput]:
    """The `--file field=path` options as files, each named as the file it was read from."""
    read = []
    for option in options:
        field, path = _pair(option, "--file", "field=path")
        try:
            content = Path(path).read_bytes()
        except OSError as error:
            raise FormError(f"cannot read {path}: {error.strerror or error}") from error
        read.append(ToolFileInput(field=field, name=Path(path).name, content=base64.b64encode(content).decode()))
    return read


def _pair(option: str, flag: str, shape: str) -> tuple[str, str]:
    name, equals, value = option.partition("=")
    if not equals or not name:
        raise FormError(f"{flag} takes {shape}, not {option!r}")
    return name, value


def _typed(value: str, kind: ToolFieldKind | None) -> Any:
    """The value as its field's kind wants it; as given (text) when it is not of that kind, for the server to name."""
    if kind is ToolFieldKind.NUMBER:
        for number in (int, float):
            try:
                parsed = number(value)
            except ValueError:
                continue
            if math.isfinite(parsed):
                return parsed
    if kind is ToolFieldKind.BOOLEAN and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    return value
