"""A finished run's output and event log on their way into its row and its archive, without whole copies.

A run's output may be as large as its output cap (8 MiB by default), and a statement's parameters are copied
whole, about three times over, on the way out (driver buffer, protocol message, socket buffer). So the worker
sends the output and the log as pieces (the texts its log already holds, one entry's JSON at a time) by COPY
into a temporary table of the transaction, and PostgreSQL joins them into stdout, stderr and the archive.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count
from typing import Any

from sqlalchemy import ColumnElement, Integer, Text, cast, column, func, literal, select, table, text
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session

from podrun.core.output import Stream
from podrun.streams.events import Entry, archived_json, output_pieces

# Rows live until the transaction ends; the table, one per connection, is created once. Its pieces are stored out
# of line as they come: compressing them (TOAST's default) only to join them again would double the work.
_CREATE = text(
    "DO $$ BEGIN IF to_regclass('pg_temp.finishing_log') IS NULL THEN"
    " CREATE TEMPORARY TABLE finishing_log (part integer, kind text, piece text) ON COMMIT DELETE ROWS;"
    " ALTER TABLE finishing_log ALTER piece SET STORAGE EXTERNAL;"
    " END IF; END $$"
)
_STAGED = table("finishing_log", column("part", Integer), column("kind", Text), column("piece", Text))
_COLUMNS = ("part", "kind", "piece")
# What a piece is: output of one stream, or an entry of the log in its archived form.
_OUTPUT_KINDS = {Stream.STDOUT: "o", Stream.STDERR: "e"}
_ENTRY = "l"


async def stage(session: AsyncSession | async_scoped_session[AsyncSession], entries: list[Entry]) -> None:
    """Send the output and the log of `entries` into this transaction's staging table, in pieces."""
    await session.execute(_CREATE)
    connection = await (await session.connection()).get_raw_connection()
    driver: Any = connection.driver_connection  # asyncpg's: COPY streams an iterable of rows
    await driver.copy_records_to_table("finishing_log", records=_pieces(entries), columns=_COLUMNS)


def output(stream: Stream) -> ColumnElement[str]:
    """The staged output of `stream`, joined."""
    return func.coalesce(_joined(_OUTPUT_KINDS[stream], ""), "")


def events() -> ColumnElement[Any]:
    """The staged log as the archive's JSON array."""
    return cast(literal("[") + func.coalesce(_joined(_ENTRY, ","), "") + literal("]"), JSONB)


def _joined(kind: str, separator: str) -> ColumnElement[str]:
    pieces = func.string_agg(_STAGED.c.piece, aggregate_order_by(literal(separator), _STAGED.c.part))
    return select(pieces).where(_STAGED.c.kind == kind).scalar_subquery()


def _pieces(entries: list[Entry]) -> Iterator[tuple[int, str, str]]:
    part = count()
    for stream, kind in _OUTPUT_KINDS.items():
        for piece in output_pieces(entries, stream):
            yield next(part), kind, piece
    for entry in entries:
        yield next(part), _ENTRY, archived_json(entry)
