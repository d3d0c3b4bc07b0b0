"""The rules of tools: who publishes and reviews versions, who sees them, and what a run of one is given."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import structlog
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from podrun.accounts.models import Role, User
from podrun.core.errors import BadUserInput, Conflict, Forbidden, NotFound
from podrun.core.pages import MAX_PAGE, check_first, decode_cursor
from podrun.core.text import check_text
from podrun.executions.service import SubmitRequest
from podrun.runners import protocol
from podrun.runners.base import InputFile
from podrun.runners.catalog import RuntimeCatalog
from podrun.scripts.service import ScriptService
from podrun.settings import Settings
from podrun.tools.form import FormField, SubmittedFile, ToolFieldKind, check_form, check_inputs
from podrun.tools.models import Tool, ToolVersion, ToolVersionStatus
from podrun.tools.repository import ToolRepository, ToolVersionRepository

log = structlog.get_logger(__name__)

CURSOR_KIND = "tool"
SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,48}[a-z0-9])")
MAX_TITLE = 200
MAX_DESCRIPTION_BYTES = 10_000
MAX_NOTE_BYTES = 4000
MAX_SEARCH = 200
PUBLISHERS = frozenset({Role.CONTRIBUTOR, Role.ADMIN})
INPUTS_JSON = "inputs.json"


@dataclass(frozen=True, slots=True)
class PublishRequest:
    """A version to propose: of the caller's saved script `script_id`, under `slug`, with its form."""

    script_id: str
    slug: str
    title: str
    description: str
    fields: Sequence[FormField]
    source_visible: bool = False


@dataclass(frozen=True, slots=True)
class RunRequest:
    """A run of a tool: its approved version unless `version` is given, with the form's values and files."""

    slug: str
    values: object
    version: int | None = None
    files: Sequence[SubmittedFile] = ()
    limits: Mapping[str, int | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolPage:
    """One page of tools, newest first."""

    tools: list[Tool]
    has_next_page: bool


def may_manage(user: User | None, tool: Tool) -> bool:
    """Whether `user` sees every version of the tool (its author, and admins)."""
    return user is not None and (user.id == tool.author_id or user.role is Role.ADMIN)


def may_see(user: User | None, version: ToolVersion) -> bool:
    """Whether `user` sees this version: approved ones everyone, the others their author and admins."""
    return version.status is ToolVersionStatus.APPROVED or may_manage(user, version.tool)


def may_read_source(user: User | None, version: ToolVersion) -> bool:
    """Whether `user` sees the version's script: if its author chose so, else only the author and admins."""
    return version.source_visible or may_manage(user, version.tool)


def form_of(version: ToolVersion) -> list[FormField]:
    """The version's form, in display order."""
    return [FormField.from_json(item) for item in version.fields]


class ToolService(SQLAlchemyAsyncRepositoryService[Tool, ToolRepository]):
    """Tools and their versions. Made per unit of work by the container."""

    repository_type = ToolRepository

    def __init__(self, session: AsyncSession, *, settings: Settings, catalog: RuntimeCatalog) -> None:
        super().__init__(session=session)
        self.versions = ToolVersionRepository(session=session)
        self.settings = settings
        self.catalog = catalog

    async def publish(self, user: User, request: PublishRequest) -> ToolVersion:
        """Propose a new version (of a new tool, or of the user's tool of that slug), PENDING until reviewed.

        The tool, the version and its form are written in one transaction, or nothing is.
        """
        if user.role not in PUBLISHERS:
            raise Forbidden("only contributors and administrators may publish tools")
        slug, title, description = request.slug, request.title.strip(), request.description.strip()
        if SLUG.fullmatch(slug) is None:
            raise BadUserInput(
                "slug must be 3 to 50 lower-case letters, digits or '-', starting and ending with a letter or digit"
            )
        check_text("title", title, MAX_TITLE * 4)
        if not 1 <= len(title) <= MAX_TITLE:
            raise BadUserInput(f"title must be 1 to {MAX_TITLE} characters long")
        check_text("description", description, MAX_DESCRIPTION_BYTES)
        form = check_form(request.fields, self.settings.limits.files_bytes)
        if sum(item.kind is ToolFieldKind.FILE for item in form) > self.settings.limits.files_count:
            raise BadUserInput(f"a form has at most {self.settings.limits.files_count} file fields")
        session = self.repository.session
        scripts = ScriptService(session=session, settings=self.settings, catalog=self.catalog)
        script = await scripts.owned(user, request.script_id)
        try:
            tool = await self.repository.by_slug(slug, for_update=True)
            if tool is None:
                tool = Tool(slug=slug, author_id=user.id, title=title, description=description)
                session.add(tool)
                await session.flush()
            elif tool.author_id != user.id:
                raise Conflict(f"the slug {slug} is taken")
            version = ToolVersion(
                tool=tool,
                version=await self.versions.last_number(tool.id) + 1,
                status=ToolVersionStatus.PENDING,
                title=title,
                description=description,
                script=script.script,
                runtime=script.runtime,
                source_visible=request.source_visible,
                fields=[item.to_json() for item in form],
            )
            session.add(version)
            await session.commit()
            set_committed_value(tool, "author", user)  # a new tool's author is not loaded
        except IntegrityError as error:
            # Another publish took the slug (or the version number) first.
            await session.rollback()
            raise Conflict(f"the slug {slug} is taken, or another version was published at the same time") from error
        log.info("tool version published", tool_id=str(tool.id), version=version.version, by=str(user.id))
        return version

    async def review(self, admin: User, version_id: str, *, approve: bool, note: str | None) -> ToolVersion:
        """Approve or reject a PENDING version (a rejection says why); the latest approved one is the catalog's."""
        if admin.role is not Role.ADMIN:
            raise Forbidden("only administrators may review tools")
        if note is not None:
            note = note.strip() or None
            check_text("note", note or "", MAX_NOTE_BYTES)
        if not approve and note is None:
            raise BadUserInput("note: say why the version is rejected")
        version = await self._version(version_id, for_update=True)
        if version.status is not ToolVersionStatus.PENDING:
            raise Conflict(f"this version was already reviewed: {version.status.value}")
        version.status = ToolVersionStatus.APPROVED if approve else ToolVersionStatus.REJECTED
        version.note, version.reviewed_at, version.reviewer_id = note, datetime.now(UTC), admin.id
        tool = version.tool
        if approve and (tool.approved_version or 0) < version.version:
            tool.approved_version, tool.title, tool.description = version.version, version.title, version.description
        await self.repository.session.commit()
        log.info("tool version reviewed", version_id=str(version.id), status=version.status.value, by=str(admin.id))
        return version

    async def page(self, user: User, first: int, after: str | None, search: str | None, *, mine: bool) -> ToolPage:
        """The catalog (tools with an approved version), or with `mine` the user's own tools; newest first."""
        check_first(first)
        if search is not None:
            check_text("search", search, MAX_SEARCH * 4)
            if len(search) > MAX_SEARCH:
                raise BadUserInput(f"search must be at most {MAX_SEARCH} characters long")
        before = decode_cursor(after, CURSOR_KIND) if after is not None else None
        rows = await self.repository.page(first + 1, before, search, user.id if mine else None)
        return ToolPage(tools=rows[:first], has_next_page=len(rows) > first)

    async def visible(self, user: User | None, slug: str) -> Tool:
        """The tool of this slug if `user` may see it: once approved everyone, before its author and admins."""
        tool = await self.repository.by_slug(slug) if SLUG.fullmatch(slug) else None
        if tool is None or (tool.approved_version is None and not may_manage(user, tool)):
            raise NotFound("tool not found")
        return tool

    async def visible_versions(self, user: User | None, tool: Tool) -> list[ToolVersion]:
        """The versions of a tool `user` may see, newest first."""
        return [version for version in await self.versions.of_tool(tool.id) if may_see(user, version)]

    async def approved(self, tools: Sequence[Tool]) -> dict[UUID, ToolVersion]:
        """The version the catalog shows of each of these tools (those with one approved), in one query."""
        keys = [(tool.id, tool.approved_version) for tool in tools if tool.approved_version is not None]
        return {version.tool_id: version for version in await self.versions.numbered_many(keys)}

    async def previous(self, user: User | None, version: ToolVersion) -> ToolVersion | None:
        """The newest version before this one that `user` may see (what a reviewer compares it with)."""
        for earlier in await self.versions.of_tool(version.tool_id):
            if earlier.version < version.version and may_see(user, earlier):
                return earlier
        return None

    async def pending(self, admin: User) -> list[ToolVersion]:
        """The review queue, oldest first."""
        if admin.role is not Role.ADMIN:
            raise Forbidden("only administrators may review tools")
        return await self.versions.pending(MAX_PAGE)

    async def by_ids(self, version_ids: Sequence[UUID]) -> dict[UUID, ToolVersion]:
        """Versions by id (those that still exist), for the runs that ran them (whoever sees a run sees which
        version it was)."""
        return {version.id: version for version in await self.versions.list(ToolVersion.id.in_(version_ids))}

    async def submission(self, user: User, request: RunRequest) -> SubmitRequest:
        """The execution a run of the tool is: its version's script, with the form's inputs checked and placed.

        Without `version`, the approved one; a version not approved runs only for its author and admins.
        """
        tool = await self.visible(user, request.slug)
        number = request.version if request.version is not None else tool.approved_version
        version = await self.versions.numbered(tool.id, number) if number is not None else None
        if version is None or not may_see(user, version):
            raise NotFound(f"tool {tool.slug} has no such version" if number is not None else "tool not found")
        inputs = check_inputs(form_of(version), request.values, request.files, self.settings.limits.files_bytes)
        placed = [InputFile(INPUTS_JSON, inputs.values_json())]
        placed += [InputFile(f"{protocol.INPUTS_DIR}/{file.name}", file.content) for file in inputs.files]
        return SubmitRequest(
            script=version.script,
            runtime=version.runtime,
            # A tool's inputs are its form: its stdin is empty and closed, so a script reading it never waits.
            stdin="",
            limits=request.limits,
            tool_version_id=version.id,
            tool_inputs=placed,
        )

    async def _version(self, version_id: str, *, for_update: bool = False) -> ToolVersion:
        try:
            key = UUID(version_id)
        except ValueError as error:
            raise NotFound("tool version not found") from error
        version = await self.versions.locked(key) if for_update else await self.versions.get_one_or_none(id=key)
        if version is None:
            raise NotFound("tool version not found")
        return version
