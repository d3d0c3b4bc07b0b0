"""Input files in their JSONB column: the stored form is the one rows already hold."""

from __future__ import annotations

from podrun.executions.models import InputFilesColumn
from podrun.runners.base import InputFile

# A row's `files` exactly as the previous code stored it: the base64 the client sent.
STORED = [{"name": "data.csv", "content": "YSxiCjEsMgo="}, {"name": "blob.bin", "content": "AP8="}]
FILES = [InputFile("data.csv", b"a,b\n1,2\n"), InputFile("blob.bin", b"\x00\xff")]


def test_stored_files_read_back_decoded_and_are_written_in_the_same_form() -> None:
    column = InputFilesColumn()
    assert column.process_result_value(STORED, dialect=None) == FILES  # type: ignore[arg-type]
    assert column.process_bind_param(FILES, dialect=None) == STORED  # type: ignore[arg-type]
    assert column.process_result_value(None, dialect=None) is None  # type: ignore[arg-type]
