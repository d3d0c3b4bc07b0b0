"""GraphQL types and resolvers for saved scripts: list, read, save (create or change), delete."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.permission import BasePermission

from podrun.core import pages
from podrun.graphql.connections import PageInfo
from podrun.graphql.context import Info
from podrun.graphql.execution_types import RuntimeType, runtime_view
from podrun.graphql.permissions import IsAuthenticated
from podrun.scripts.models import Script
from podrun.scripts.service import CURSOR_KIND, SaveRequest, ScriptPage

SIGNED_IN: list[type[BasePermission]] = [IsAuthenticated]


@strawberry.type(name="Script")
class ScriptType:
    """A script you saved."""

    model: strawberry.Private[Script]
    id: strawberry.ID
    name: str
    script: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, script: Script) -> ScriptType:
        """The GraphQL view of a saved-script row."""
        return cls(
            model=script,
            id=strawberry.ID(str(script.id)),
            name=script.name,
            script=script.script,
            created_at=script.created_at,
            updated_at=script.updated_at,
        )

    @strawberry.field
    def runtime(self, info: Info) -> RuntimeType:
        return runtime_view(info, self.model.runtime, info.context.container.settings.limits.default)


@strawberry.type
class ScriptEdge:
    """A saved script in a page, with the cursor that points at it."""

    cursor: str
    node: ScriptType


@strawberry.type
class ScriptConnection:
    """A page of saved scripts, newest first."""

    edges: list[ScriptEdge]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: ScriptPage) -> ScriptConnection:
        """The GraphQL view of a page."""
        edges = [
            ScriptEdge(cursor=pages.encode_cursor(CURSOR_KIND, script.id), node=ScriptType.from_model(script))
            for script in page.scripts
        ]
        return cls(
            edges=edges,
            page_info=PageInfo.after(edges, page.has_next_page),
        )


@strawberry.input
class SaveScriptInput:
    """A script to save: without `id` a new one, with `id` your saved script of that id is replaced."""

    name: str
    script: str
    runtime: str | None = strawberry.field(default=None, description="A runtime id; null for the default.")
    id: strawberry.ID | None = None


@strawberry.type
class ScriptQuery:
    """Reading saved scripts."""

    @strawberry.field(description="Your saved scripts, newest first.", permission_classes=SIGNED_IN)
    async def scripts(self, info: Info, first: int | None = 20, after: str | None = None) -> ScriptConnection:
        async with info.context.container.scripts() as scripts:
            page = await scripts.page(info.context.signed_in_user, 20 if first is None else first, after)
            return ScriptConnection.from_page(page)

    @strawberry.field(description="One of your saved scripts.", permission_classes=SIGNED_IN)
    async def script(self, info: Info, id: strawberry.ID) -> ScriptType | None:
        async with info.context.container.scripts() as scripts:
            return ScriptType.from_model(await scripts.owned(info.context.signed_in_user, id))


@strawberry.type
class ScriptMutation:
    """Saving and deleting scripts."""

    @strawberry.mutation(
        description="Save a new script, or change one of yours (with id).", permission_classes=SIGNED_IN
    )
    async def save_script(self, info: Info, input: SaveScriptInput) -> ScriptType:
        request = SaveRequest(name=input.name, script=input.script, runtime=input.runtime, id=input.id)
        async with info.context.container.scripts() as scripts:
            return ScriptType.from_model(await scripts.save(info.context.signed_in_user, request))

    @strawberry.mutation(description="Delete one of your saved scripts.", permission_classes=SIGNED_IN)
    async def delete_script(self, info: Info, id: strawberry.ID) -> bool:
        async with info.context.container.scripts() as scripts:
            await scripts.remove(info.context.signed_in_user, id)
        return True
