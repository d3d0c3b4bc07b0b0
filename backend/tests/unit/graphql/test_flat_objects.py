"""The flat completion of OutputLine objects gives exactly what the standard executor gives."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, cast

import pytest
import strawberry

from podrun.core.output import Stream
from podrun.graphql import flat_objects
from podrun.graphql.execution_types import OutputLine
from podrun.graphql.flat_objects import FlatObjectsExecutionContext
from podrun.streams.events import LineBatch, LineEvent, Lines


@strawberry.enum
class Channel(enum.Enum):
    OUT = "OUT"
    ERR = "ERR"


@strawberry.type(name="OutputLine")
class Line:
    seq: int
    channel: Channel
    text: str
    at: datetime
    partial: bool
    note: str | None = None


AT = datetime(2026, 11, 30, 10, 0, 0, 123000, tzinfo=UTC)
LINES = [
    Line(seq=i, channel=Channel.OUT if i % 2 else Channel.ERR, text=f"line {i}", at=AT, partial=i == 3)
    for i in range(5)
]


@strawberry.type
class Query:
    @strawberry.field
    def lines(self) -> list[Line]:
        return LINES

    @strawberry.field
    def broken(self) -> list[Line]:
        return [Line(seq=1, channel=Channel.OUT, text=None, at=AT, partial=False)]  # type: ignore[arg-type]


STANDARD = strawberry.Schema(query=Query)
FLAT = strawberry.Schema(query=Query, execution_context_class=FlatObjectsExecutionContext)


@pytest.mark.parametrize(
    "query",
    [
        "{ lines { seq channel text at partial note } }",
        "{ lines { __typename n: seq t: text text } }",
        "{ lines { ...L } } fragment L on OutputLine { seq at }",
        "query($skip: Boolean!) { lines { seq text @skip(if: $skip) channel @include(if: $skip) } }",
        "{ broken { seq text } }",
    ],
    ids=["all", "aliases", "fragment", "directives", "null-in-non-null"],
)
async def test_the_same_result_as_the_standard_executor(query: str) -> None:
    variables: dict[str, Any] = {"skip": True}
    standard = await STANDARD.execute(query, variable_values=variables)
    flat = await FLAT.execute(query, variable_values=variables)
    assert flat.data == standard.data
    assert [error.message for error in flat.errors or []] == [error.message for error in standard.errors or []]


async def test_the_flat_path_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    completed: list[object] = []
    original = flat_objects._complete

    def counting(*args: Any) -> dict[str, Any] | None:
        completed.append(args[2])
        return original(*args)

    monkeypatch.setattr(flat_objects, "_complete", counting)
    result = await FLAT.execute("{ lines { seq text } }")
    assert result.errors is None
    assert completed == LINES


KEPT = Lines(
    [
        LineBatch(1, AT, "oOeE", "a\nb\n\nnon-ASCII é"),
        LineEvent(5, Stream.STDERR, "an older log's single line", AT, partial=True),
        LineBatch(6, AT, "oo", "tab\there\n"),
    ]
)


@strawberry.type
class ChunkQuery:
    @strawberry.field
    def lines(self) -> list[OutputLine]:
        return cast("list[OutputLine]", KEPT)


STANDARD_CHUNK = strawberry.Schema(query=ChunkQuery)
FLAT_CHUNK = strawberry.Schema(query=ChunkQuery, execution_context_class=FlatObjectsExecutionContext)


@pytest.mark.parametrize(
    "query",
    [
        "{ lines { seq stream text at partial } }",
        "{ lines { __typename n: seq t: text text s: stream } }",
        "{ lines { __typename } }",
        "{ lines { ...L } } fragment L on OutputLine { seq at }",
        "query($skip: Boolean!) { lines { seq text @skip(if: $skip) stream @include(if: $skip) } }",
    ],
    ids=["all", "aliases", "typename", "fragment", "directives"],
)
async def test_lines_kept_in_batches_complete_as_the_standard_executor_completes_them(
    query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_columns: list[object] = []
    original = flat_objects._complete_columns

    def counting(*args: Any) -> list[dict[str, Any]] | None:
        by_columns.append(args[2])
        return original(*args)

    monkeypatch.setattr(flat_objects, "_complete_columns", counting)
    variables: dict[str, Any] = {"skip": True}
    standard = await STANDARD_CHUNK.execute(query, variable_values=variables)
    flat = await FLAT_CHUNK.execute(query, variable_values=variables)
    assert standard.errors is None
    assert flat.errors is None
    assert flat.data == standard.data
    assert [list(line) for line in flat.data["lines"]] == [list(line) for line in standard.data["lines"]]  # order
    assert by_columns == [KEPT]
