"""A finished run's output and event log on their way into its row and its archive, without whole copies.

A run's output may be as large as its output cap (8 MiB by default), and a statement's parameters are copied
whole, about three times over, on the way out (driver buffer, protocol message, socket buffer). So the log of a
run that printed much is sent as pieces (the texts the worker's log already holds, one entry's JSON at a time)
by COPY into a temporary table of the transaction, and PostgreSQL joins them into stdout, stderr and the
archive. A small log goes as statement parameters, which saves the round trips.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count
from typing import Any

from sqlalchemy import ColumnElement, Integer, Text, cast, column, func, literal, select, table, text
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session

from podrun.core.output import Stream
from podrun.streams.events import Entry, LineBatch, LineEvent, archived_json, joined_output, output_pieces

# Characters of output above which a log is staged: below, its parameters' copies cost less than the round trips.
STAGE_ABOVE_CHARS = 256 * 1024
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

# The repository's session (Advanced Alchemy types it as either).
AnySession = AsyncSession | async_scoped_session[AsyncSession]


class ArchivedLog:
    """The stdout, stderr and archive of a run's whole log `entries`, as values of the statements that store them."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self.staged = stages(entries)

    def output(self) -> dict[str, Any]:
        """The `stdout` and `stderr` column values (joined here for a small log, or from the staged pieces)."""
        if self.staged:
            return {
                "stdout": _joined(_OUTPUT_KINDS[Stream.STDOUT], ""),
                "stderr": _joined(_OUTPUT_KINDS[Stream.STDERR], ""),
            }
        return {
            "stdout": joined_output(self.entries, Stream.STDOUT),
            "stderr": joined_output(self.entries, Stream.STDERR),
        }

    def events(self) -> ColumnElement[Any]:
        """The archive's JSON array of entries."""
        if self.staged:
            return cast(literal("[") + _joined(_ENTRY, ",") + literal("]"), JSONB)
        return cast(literal("[" + ",".join(map(archived_json, self.entries)) + "]", Text), JSONB)

    async def stage(self, session: AnySession) -> None:
        """Send the pieces of a staged log into this transaction's staging table (before `output` and `events`)."""
        await session.execute(_CREATE)
        connection = await (await session.connection()).get_raw_connection()
        driver: Any = connection.driver_connection  # asyncpg's: COPY streams an iterable of rows
        await driver.copy_records_to_table("finishing_log", records=_pieces(self.entries), columns=_COLUMNS)


def stages(entries: list[Entry]) -> bool:
    """Whether the log of these entries is large enough to be staged (and so stored in a transaction)."""
    return sum(len(entry.text) for entry in entries if isinstance(entry, LineBatch | LineEvent)) > STAGE_ABOVE_CHARS


def _joined(kind: str, separator: str) -> ColumnElement[str]:
    pieces = func.string_agg(_STAGED.c.piece, aggregate_order_by(literal(separator), _STAGED.c.part))
    return func.coalesce(select(pieces).where(_STAGED.c.kind == kind).scalar_subquery(), "")


def _pieces(entries: list[Entry]) -> Iterator[tuple[int, str, str]]:
    part = count()
    for stream, kind in _OUTPUT_KINDS.items():
        for piece in output_pieces(entries, stream):
            yield next(part), kind, piece
    for entry in entries:
        yield next(part), _ENTRY, archived_json(entry)
