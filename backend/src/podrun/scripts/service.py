"""The rules of saved scripts: each user's own, within the script size cap and a count per user."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import structlog
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session

from podrun.accounts.models import User
from podrun.core.errors import BadUserInput, NotFound
from podrun.core.pages import check_first, decode_cursor
from podrun.core.text import check_text
from podrun.runners.catalog import RuntimeCatalog
from podrun.scripts.models import Script
from podrun.settings import Settings

log = structlog.get_logger(__name__)

MAX_NAME_LENGTH = 200
CURSOR_KIND = "script"


@dataclass(frozen=True, slots=True)
class SaveRequest:
    """A script to save: a new one without `id`, else the changed one."""

    name: str
    script: str
    runtime: str | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class ScriptPage:
    """One page of saved scripts, newest first."""

    scripts: list[Script]
    has_next_page: bool


class ScriptRepository(SQLAlchemyAsyncRepository[Script]):
    """Saved-script rows."""

    model_type = Script

    async def page(self, owner_id: UUID, first: int, before: UUID | None) -> list[Script]:
        """Up to `first` of the owner's scripts, newest first, older than `before`."""
        query = select(Script).where(Script.owner_id == owner_id).order_by(Script.id.desc()).limit(first)
        if before is not None:
            query = query.where(Script.id < before)
        return list(await self.session.scalars(query))


class ScriptService(SQLAlchemyAsyncRepositoryService[Script, ScriptRepository]):
    """Saved scripts. Made per unit of work by the container."""

    repository_type = ScriptRepository

    def __init__(
        self, session: AsyncSession | async_scoped_session[AsyncSession], *, settings: Settings, catalog: RuntimeCatalog
    ) -> None:
        super().__init__(session=session)
        self.settings = settings
        self.catalog = catalog

    async def owned(self, user: User, script_id: str | UUID) -> Script:
        """The user's script with this id; NOT_FOUND for a missing one and for anyone else's alike."""
        try:
            key = script_id if isinstance(script_id, UUID) else UUID(script_id)
        except ValueError as error:
            raise NotFound("script not found") from error
        script = await self.get_one_or_none(id=key, owner_id=user.id)
        if script is None:
            raise NotFound("script not found")
        return script

    async def save(self, user: User, request: SaveRequest) -> Script:
        """Create the script, or change the user's script `request.id`."""
        name = request.name.strip()
        check_text("name", name, MAX_NAME_LENGTH * 4)
        if not 1 <= len(name) <= MAX_NAME_LENGTH:
            raise BadUserInput(f"name must be 1 to {MAX_NAME_LENGTH} characters long")
        check_text("script", request.script, self.settings.limits.script_bytes)
        runtime = self.catalog.get(request.runtime).id
        if request.id is not None:
            script = await self.owned(user, request.id)
            script.name, script.script, script.runtime = name, request.script, runtime
            return await self.update(script, auto_commit=True)
        if await self.count(Script.owner_id == user.id) >= self.settings.limits.saved_scripts:
            raise BadUserInput(f"you have {self.settings.limits.saved_scripts} saved scripts; delete some first")
        script = await self.create(
            Script(owner_id=user.id, name=name, script=request.script, runtime=runtime), auto_commit=True
        )
        log.info("script saved", script_id=str(script.id))
        return script

    async def remove(self, user: User, script_id: str) -> None:
        """Delete the user's script; NOT_FOUND as for `owned`."""
        script = await self.owned(user, script_id)
        await self.delete(script.id, auto_commit=True)

    async def page(self, user: User, first: int, after: str | None) -> ScriptPage:
        """The user's scripts, newest first, after the cursor `after`."""
        check_first(first)
        before = decode_cursor(after, CURSOR_KIND) if after is not None else None
        rows = await self.repository.page(user.id, first + 1, before)
        return ScriptPage(scripts=rows[:first], has_next_page=len(rows) > first)
