"""A tool's form: the fields it declares (checked when published) and the values a run gives (checked when run).

A form is stored as JSON on its version (`FormField.to_json`), read back with `FormField.from_json`. Every
error names the field it is about, in its message and in `extensions.field`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from podrun.core.errors import BadUserInput
from podrun.runners import protocol
from podrun.runners.base import InputFile

MAX_FIELDS = 20
FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_LABEL = 100
MAX_HELP = 500
MAX_CHOICES = 50
MAX_CHOICE = 200
MAX_ACCEPT = 20
# A file type is a file name extension, as in an HTML accept attribute: ".csv".
EXTENSION = re.compile(r"\.[a-z0-9]{1,10}")
MAX_TEXT = 1000
MAX_MULTILINE_TEXT = 100_000


class ToolFieldKind(enum.StrEnum):
    """What a field asks for, and so which input a form shows for it."""

    TEXT = "TEXT"
    MULTILINE_TEXT = "MULTILINE_TEXT"
    NUMBER = "NUMBER"
    CHOICE = "CHOICE"
    BOOLEAN = "BOOLEAN"
    FILE = "FILE"


class FieldError(BadUserInput):
    """BAD_USER_INPUT about one field of a form; `extensions.field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)


@dataclass(frozen=True, slots=True)
class FormField:
    """One field of a form, as its author declared it."""

    name: str
    label: str
    kind: ToolFieldKind
    required: bool = False
    default: Any = None
    help: str | None = None
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    accept: tuple[str, ...] | None = None
    max_bytes: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The field as stored on its version."""
        return {
            "name": self.name,
            "label": self.label,
            "kind": self.kind.value,
            "required": self.required,
            "default": self.default,
            "help": self.help,
            "min": self.min,
            "max": self.max,
            "choices": None if self.choices is None else list(self.choices),
            "accept": None if self.accept is None else list(self.accept),
            "max_bytes": self.max_bytes,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> FormField:
        """A stored field (checked when it was published)."""
        return cls(
            name=value["name"],
            label=value["label"],
            kind=ToolFieldKind(value["kind"]),
            required=value["required"],
            default=value["default"],
            help=value["help"],
            min=value["min"],
            max=value["max"],
            choices=None if value["choices"] is None else tuple(value["choices"]),
            accept=None if value["accept"] is None else tuple(value["accept"]),
            max_bytes=value["max_bytes"],
        )


@dataclass(frozen=True, slots=True)
class SubmittedFile:
    """A file a run gives for a FILE field: its name and base64 content."""

    field: str
    name: str
    content: str


@dataclass(frozen=True, slots=True)
class FormInputs:
    """What a run's script gets: the values for /tmp/inputs.json, and the files for /tmp/inputs/ (decoded)."""

    values: dict[str, Any]
    files: list[InputFile]

    def values_json(self) -> bytes:
        """The content of /tmp/inputs.json."""
        return json.dumps(self.values, ensure_ascii=False, indent=2).encode()


def check_form(fields: Sequence[FormField], max_file_bytes: int) -> list[FormField]:
    """The fields as published: each well-formed for its kind, names distinct; FILE fields get a size cap.

    `max_file_bytes` is the most a file may be (the server's total for a run's files).
    """
    if len(fields) > MAX_FIELDS:
        raise BadUserInput(f"a form has at most {MAX_FIELDS} fields")
    seen: set[str] = set()
    checked = []
    for field in fields:
        if FIELD_NAME.fullmatch(field.name) is None:
            raise FieldError(
                shown_name(field.name),
                "a field name is 1 to 40 lower-case letters, digits or '_', starting with a letter",
            )
        if field.name in seen:
            raise FieldError(field.name, "two fields have this name")
        seen.add(field.name)
        checked.append(_checked_field(field, max_file_bytes))
    return checked


def _checked_field(field: FormField, max_file_bytes: int) -> FormField:
    name, kind = field.name, field.kind
    for text in (field.label, field.help or "", *(field.choices or ())):
        _check_text(name, text)
    if not 1 <= len(field.label.strip()) <= MAX_LABEL:
        raise FieldError(name, f"the label must be 1 to {MAX_LABEL} characters long")
    if field.help is not None and len(field.help) > MAX_HELP:
        raise FieldError(name, f"the help text must be at most {MAX_HELP} characters long")
    for option, value, kinds in (
        ("min", field.min, {ToolFieldKind.NUMBER}),
        ("max", field.max, {ToolFieldKind.NUMBER}),
        ("choices", field.choices, {ToolFieldKind.CHOICE}),
        ("accept", field.accept, {ToolFieldKind.FILE}),
        ("maxBytes", field.max_bytes, {ToolFieldKind.FILE}),
        ("default", field.default, set(ToolFieldKind) - {ToolFieldKind.FILE}),
    ):
        if value is not None and kind not in kinds:
            raise FieldError(name, f"{option} does not apply to a {kind.value} field")
    for bound in (field.min, field.max):
        if bound is not None and not math.isfinite(bound):
            raise FieldError(name, "min and max must be finite numbers")
    if field.min is not None and field.max is not None and field.min > field.max:
        raise FieldError(name, "min must not be greater than max")
    max_bytes = field.max_bytes
    if kind is ToolFieldKind.CHOICE:
        _check_choices(name, field.choices)
    if kind is ToolFieldKind.FILE:
        if max_bytes is None:
            max_bytes = max_file_bytes
        if not 1 <= max_bytes <= max_file_bytes:
            raise FieldError(name, f"maxBytes must be between 1 and {max_file_bytes}")
        if field.accept is not None and (
            not 1 <= len(field.accept) <= MAX_ACCEPT or any(EXTENSION.fullmatch(ext) is None for ext in field.accept)
        ):
            raise FieldError(name, f"accept is 1 to {MAX_ACCEPT} file name extensions such as .csv, in lower case")
    checked = FormField(
        name=name,
        label=field.label.strip(),
        kind=kind,
        required=field.required,
        default=None,
        help=field.help or None,
        min=field.min,
        max=field.max,
        choices=field.choices,
        accept=field.accept,
        max_bytes=max_bytes,
    )
    if field.default is not None:
        # A default must be a value the field would accept.
        return dataclasses.replace(checked, default=check_value(checked, field.default))
    return checked


def _check_choices(name: str, choices: tuple[str, ...] | None) -> None:
    if choices is None or not 1 <= len(choices) <= MAX_CHOICES:
        raise FieldError(name, f"a CHOICE field has 1 to {MAX_CHOICES} choices")
    if len(set(choices)) != len(choices):
        raise FieldError(name, "the choices must be distinct")
    if any(not 1 <= len(choice) <= MAX_CHOICE or "\x00" in choice for choice in choices):
        raise FieldError(name, f"each choice must be 1 to {MAX_CHOICE} characters long")


def check_value(field: FormField, value: Any) -> Any:
    """`value` as the script gets it, if the field accepts it (FILE fields take files, not values)."""
    name, kind = field.name, field.kind
    if kind in (ToolFieldKind.TEXT, ToolFieldKind.MULTILINE_TEXT):
        if not isinstance(value, str):
            raise FieldError(name, "must be text")
        _check_text(name, value)
        if kind is ToolFieldKind.TEXT and ("\n" in value or "\r" in value):
            raise FieldError(name, "must be a single line")
        limit = MAX_TEXT if kind is ToolFieldKind.TEXT else MAX_MULTILINE_TEXT
        if len(value) > limit:
            raise FieldError(name, f"must be at most {limit} characters long")
        return value
    if kind is ToolFieldKind.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise FieldError(name, "must be a number")
        if field.min is not None and value < field.min:
            raise FieldError(name, f"must be at least {_number(field.min)}")
        if field.max is not None and value > field.max:
            raise FieldError(name, f"must be at most {_number(field.max)}")
        return value
    if kind is ToolFieldKind.CHOICE:
        if not isinstance(value, str) or value not in (field.choices or ()):
            raise FieldError(name, f"must be one of {', '.join(field.choices or ())}")
        return value
    if kind is ToolFieldKind.BOOLEAN:
        if not isinstance(value, bool):
            raise FieldError(name, "must be true or false")
        return value
    raise FieldError(name, "is a file field: give it in files, not in values")


def check_inputs(
    fields: Sequence[FormField], values: object, files: Sequence[SubmittedFile], max_total_bytes: int
) -> FormInputs:
    """The inputs of one run, if every field's value (or file) is right; the files within `max_total_bytes`."""
    if not isinstance(values, Mapping):
        raise BadUserInput("values must be a JSON object of field names and values")
    by_name = {field.name: field for field in fields}
    for key in values:
        if key not in by_name:
            raise FieldError(shown_name(str(key)), "the form has no such field")
    files_by_field: dict[str, SubmittedFile] = {}
    for file in files:
        field = by_name.get(file.field)
        if field is None or field.kind is not ToolFieldKind.FILE:
            raise FieldError(shown_name(file.field), "the form has no such file field")
        if file.field in files_by_field:
            raise FieldError(file.field, "is given two files")
        files_by_field[file.field] = file
    inputs: dict[str, Any] = {}
    placed: list[InputFile] = []
    total = 0
    for field in fields:
        if field.kind is ToolFieldKind.FILE:
            given = files_by_field.get(field.name)
            if field.name in values and values[field.name] is not None:
                raise FieldError(field.name, "is a file field: give it in files, not in values")
            if given is None:
                if field.required:
                    raise FieldError(field.name, "is required")
                inputs[field.name] = None
                continue
            if any(file.name == given.name for file in placed):
                raise FieldError(field.name, f"another field's file is also named {given.name}")
            placed.append(_checked_file(field, given))
            total += len(placed[-1].content)
            inputs[field.name] = given.name
            continue
        value = values.get(field.name)
        if value == "" and field.kind in (ToolFieldKind.TEXT, ToolFieldKind.MULTILINE_TEXT) and field.required:
            value = None  # an empty box is no answer to a required question
        if value is None:
            if field.required and field.default is None:
                raise FieldError(field.name, "is required")
            value = field.default
            if value is None and field.kind is ToolFieldKind.BOOLEAN:
                value = False
        inputs[field.name] = None if value is None else check_value(field, value)
    checked = FormInputs(values=inputs, files=placed)
    if total + len(checked.values_json()) > max_total_bytes:
        raise BadUserInput(f"the values and files must be at most {max_total_bytes} bytes in all")
    return checked


def _checked_file(field: FormField, file: SubmittedFile) -> InputFile:
    """The file, decoded, if its name, type, content and size suit the field."""
    if not protocol.is_file_name(file.name):
        raise FieldError(
            field.name, "a file name must be 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if field.accept is not None and not file.name.lower().endswith(tuple(field.accept)):
        raise FieldError(field.name, f"must be a file of type {', '.join(field.accept)}")
    try:
        content = base64.b64decode(file.content, validate=True)
    except (binascii.Error, ValueError) as error:
        raise FieldError(field.name, "the file's content is not base64") from error
    if field.max_bytes is not None and len(content) > field.max_bytes:
        raise FieldError(field.name, f"the file must be at most {field.max_bytes} bytes")
    return InputFile(file.name, content)


def shown_name(name: str) -> str:
    """A field name as an error may repeat it: as given if it could be one, else a placeholder."""
    return name if FIELD_NAME.fullmatch(name) else "(a field name that is not valid)"


def _check_text(field: str, value: str) -> None:
    """Text that can be stored and sent: valid Unicode, no NUL."""
    if "\x00" in value:
        raise FieldError(field, "must not contain NUL characters")
    try:
        value.encode()
    except UnicodeEncodeError as error:
        raise FieldError(field, "is not valid Unicode") from error


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)
