"""The tool and tool-version rows, and the queries the catalog and the review queue need."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import func, or_, select, tuple_

from podrun.tools.models import Tool, ToolVersion, ToolVersionStatus


class ToolRepository(SQLAlchemyAsyncRepository[Tool]):
    """Tool rows."""

    model_type = Tool

    async def by_slug(self, slug: str, *, for_update: bool = False) -> Tool | None:
        """The tool of this slug; locked until the transaction ends with `for_update` (its next version number)."""
        query = select(Tool).where(Tool.slug == slug)
        if for_update:
            query = query.with_for_update(of=Tool)
        return await self.session.scalar(query)

    async def page(self, first: int, before: UUID | None, search: str | None, author_id: UUID | None) -> list[Tool]:
        """Up to `first` tools, newest first, older than `before`: those of `author_id` (any status) if given,
        else those with an approved version; only those whose slug, title or description contain `search`."""
        query = select(Tool).order_by(Tool.id.desc()).limit(first)
        if author_id is not None:
            query = query.where(Tool.author_id == author_id)
        else:
            query = query.where(Tool.approved_version.is_not(None))
        if search:
            # A plain substring, ignoring case: the client's % and _ match themselves, not any character.
            needle = search.lower()
            query = query.where(
                or_(
                    func.strpos(Tool.slug, needle) > 0,
                    func.strpos(func.lower(Tool.title), needle) > 0,
                    func.strpos(func.lower(Tool.description), needle) > 0,
                )
            )
        if before is not None:
            query = query.where(Tool.id < before)
        return list(await self.session.scalars(query))


class ToolVersionRepository(SQLAlchemyAsyncRepository[ToolVersion]):
    """Tool-version rows; a version is written once, then only its review."""

    model_type = ToolVersion

    async def locked(self, version_id: UUID) -> ToolVersion | None:
        """A version and its tool, locked until the transaction ends (so two reviews of one tool take turns)."""
        query = select(ToolVersion).where(ToolVersion.id == version_id).with_for_update()
        return await self.session.scalar(query)

    async def of_tool(self, tool_id: UUID) -> list[ToolVersion]:
        """Every version of a tool, newest first."""
        query = select(ToolVersion).where(ToolVersion.tool_id == tool_id).order_by(ToolVersion.version.desc())
        return list(await self.session.scalars(query))

    async def numbered(self, tool_id: UUID, version: int) -> ToolVersion | None:
        """Version `version` of a tool."""
        query = select(ToolVersion).where(ToolVersion.tool_id == tool_id, ToolVersion.version == version)
        return await self.session.scalar(query)

    async def numbered_many(self, keys: Sequence[tuple[UUID, int]]) -> Sequence[ToolVersion]:
        """The versions of these (tool, version number) pairs."""
        if not keys:
            return []
        query = select(ToolVersion).where(tuple_(ToolVersion.tool_id, ToolVersion.version).in_(keys))
        return (await self.session.scalars(query)).all()

    async def last_number(self, tool_id: UUID) -> int:
        """The highest version number of a tool (0 for none)."""
        query = select(func.coalesce(func.max(ToolVersion.version), 0)).where(ToolVersion.tool_id == tool_id)
        return int(await self.session.scalar(query) or 0)

    async def pending(self, first: int) -> list[ToolVersion]:
        """Up to `first` versions waiting for review, oldest first."""
        query = (
            select(ToolVersion)
            .where(ToolVersion.status == ToolVersionStatus.PENDING)
            .order_by(ToolVersion.id)
            .limit(first)
        )
        return list(await self.session.scalars(query))
