"""GraphQL types and resolvers for tools: the catalog, one tool, publishing, review, and running one."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import strawberry
from strawberry.permission import BasePermission
from strawberry.scalars import JSON

from podrun.core import pages
from podrun.graphql.accounts import UserType
from podrun.graphql.connections import PageInfo
from podrun.graphql.context import Info
from podrun.graphql.execution_types import ExecutionType, RuntimeType, runtime_view
from podrun.graphql.limits import LimitsInput
from podrun.graphql.permissions import IsAdmin, IsAuthenticated
from podrun.tools.form import FormField, SubmittedFile, ToolFieldKind
from podrun.tools.models import Tool, ToolVersion, ToolVersionStatus
from podrun.tools.service import CURSOR_KIND, PublishRequest, RunRequest, ToolPage, form_of, may_manage, may_read_source

strawberry.enum(
    ToolFieldKind,
    description=(
        "TEXT one line; MULTILINE_TEXT several; NUMBER within min and max; CHOICE one of choices; "
        "BOOLEAN yes or no; FILE a file of the accept types, at most maxBytes."
    ),
)
strawberry.enum(ToolVersionStatus, description="A version is PENDING until an admin APPROVES or REJECTS it.")

SIGNED_IN: list[type[BasePermission]] = [IsAuthenticated]
ADMIN: list[type[BasePermission]] = [IsAdmin]


@strawberry.type(name="ToolField")
class ToolFieldType:
    """A field of a tool's form."""

    name: str = strawberry.field(description="The key of its value in /tmp/inputs.json.")
    label: str
    kind: ToolFieldKind
    required: bool
    default: JSON | None
    help: str | None
    min: float | None
    max: float | None
    choices: list[str] | None
    accept: list[str] | None = strawberry.field(description="The file name extensions a FILE field takes.")
    max_bytes: int | None = strawberry.field(description="The largest file a FILE field takes.")

    @classmethod
    def from_field(cls, field: FormField) -> ToolFieldType:
        """The GraphQL view of a form field."""
        return cls(
            name=field.name,
            label=field.label,
            kind=field.kind,
            required=field.required,
            default=field.default,
            help=field.help,
            min=field.min,
            max=field.max,
            choices=None if field.choices is None else list(field.choices),
            accept=None if field.accept is None else list(field.accept),
            max_bytes=field.max_bytes,
        )


@strawberry.type(name="ToolVersion")
class ToolVersionType:
    """One immutable version of a tool: the script as published, and its form."""

    model: strawberry.Private[ToolVersion]
    id: strawberry.ID
    version: int
    status: ToolVersionStatus
    note: str | None = strawberry.field(description="What the reviewing admin wrote.")
    title: str
    description: str
    source_visible: bool = strawberry.field(description="Whether people who run it may read its script.")
    created_at: datetime
    reviewed_at: datetime | None

    @classmethod
    def from_model(cls, version: ToolVersion) -> ToolVersionType:
        """The GraphQL view of a tool-version row."""
        return cls(
            model=version,
            id=strawberry.ID(str(version.id)),
            version=version.version,
            status=version.status,
            note=version.note,
            title=version.title,
            description=version.description,
            source_visible=version.source_visible,
            created_at=version.created_at,
            reviewed_at=version.reviewed_at,
        )

    @strawberry.field(description="The form, in the order it is shown.")
    def fields(self) -> list[ToolFieldType]:
        return [ToolFieldType.from_field(field) for field in form_of(self.model)]

    @strawberry.field(description="The script; null unless its author shows it (its author and admins see it).")
    def source(self, info: Info) -> str | None:
        return self.model.script if may_read_source(info.context.signed_in_user, self.model) else None

    @strawberry.field
    def runtime(self, info: Info) -> RuntimeType:
        return runtime_view(info, self.model.runtime, info.context.container.settings.limits.default)

    @strawberry.field
    def tool(self) -> ToolType:
        return ToolType.from_model(self.model.tool)

    @strawberry.field(description="The newest earlier version you may see (what a review compares with).")
    async def previous(self, info: Info) -> ToolVersionType | None:
        async with info.context.container.tools() as tools:
            found = await tools.previous(info.context.signed_in_user, self.model)
        return None if found is None else ToolVersionType.from_model(found)


@strawberry.type(name="Tool")
class ToolType:
    """A published tool: a script with a form, for people who never read code."""

    model: strawberry.Private[Tool]
    id: strawberry.ID
    slug: str
    title: str = strawberry.field(description="Its latest approved version's (before one, its first version's).")
    description: str
    created_at: datetime

    @classmethod
    def from_model(cls, tool: Tool) -> ToolType:
        """The GraphQL view of a tool row."""
        return cls(
            model=tool,
            id=strawberry.ID(str(tool.id)),
            slug=tool.slug,
            title=tool.title,
            description=tool.description,
            created_at=tool.created_at,
        )

    @strawberry.field
    def author(self, info: Info) -> UserType:
        author = UserType.from_model(self.model.author)
        # The caller as the operation's permission check found them (no query per row; unknown: the safe view).
        if may_manage(info.context.current_user, self.model):
            return author
        # Everyone else sees the part of the address before the @ as a display name: the catalog shows who
        # published a tool, not how to mail them (User has no other name to show, and the schema stays).
        return dataclasses.replace(author, email=author.email.partition("@")[0])

    @strawberry.field(description="The latest approved version: what the catalog shows and runTool runs.")
    async def latest(self, info: Info) -> ToolVersionType | None:
        found = await info.context.loaders.approved_versions.load(self.model)
        return None if found is None else ToolVersionType.from_model(found)

    @strawberry.field(description="Its versions you may see, newest first: approved ones, and all to its author.")
    async def versions(self, info: Info) -> list[ToolVersionType]:
        async with info.context.container.tools() as tools:
            found = await tools.visible_versions(info.context.signed_in_user, self.model)
        return [ToolVersionType.from_model(version) for version in found]


@strawberry.type
class ToolEdge:
    """A tool in a page, with the cursor that points at it."""

    cursor: str
    node: ToolType


@strawberry.type
class ToolConnection:
    """A page of tools, newest first."""

    edges: list[ToolEdge]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: ToolPage) -> ToolConnection:
        """The GraphQL view of a page."""
        edges = [
            ToolEdge(cursor=pages.encode_cursor(CURSOR_KIND, tool.id), node=ToolType.from_model(tool))
            for tool in page.tools
        ]
        return cls(edges=edges, page_info=PageInfo.after(edges, page.has_next_page))


@strawberry.input
class ToolFieldInput:
    """A field of a tool's form. min and max apply to NUMBER, choices to CHOICE, accept and maxBytes to FILE."""

    name: str = strawberry.field(description="1 to 40 lower-case letters, digits or '_', starting with a letter.")
    label: str
    kind: ToolFieldKind
    required: bool | None = False
    default: JSON | None = strawberry.field(default=None, description="A value the field accepts (not for FILE).")
    help: str | None = None
    min: float | None = None
    max: float | None = None
    choices: list[str] | None = None
    accept: list[str] | None = strawberry.field(default=None, description='File name extensions such as ".csv".')
    max_bytes: int | None = strawberry.field(default=None, description="Null: the server's cap for a run's files.")

    def form_field(self) -> FormField:
        """The form field asked for."""
        return FormField(
            name=self.name,
            label=self.label,
            kind=self.kind,
            required=bool(self.required),
            default=self.default,
            help=self.help,
            min=self.min,
            max=self.max,
            choices=None if self.choices is None else tuple(self.choices),
            accept=None if self.accept is None else tuple(self.accept),
            max_bytes=self.max_bytes,
        )


@strawberry.input
class PublishToolInput:
    """A new version of a tool, from one of your saved scripts (copied as it is now)."""

    script_id: strawberry.ID
    slug: str = strawberry.field(description="3 to 50 lower-case letters, digits or '-'; your tool's, or a new one.")
    title: str
    description: str
    fields: list[ToolFieldInput]
    source_visible: bool | None = False


@strawberry.input
class ToolFileInput:
    """A file for a FILE field; it reaches the script as /tmp/inputs/<name>."""

    field: str
    name: str
    content: str = strawberry.field(description="The file's bytes, base64-encoded.")


@strawberry.input
class RunToolInput:
    """A run of a tool: the form's values by field name (FILE fields in files)."""

    slug: str
    version: int | None = strawberry.field(default=None, description="Null: the latest approved version.")
    values: JSON
    files: list[ToolFileInput] | None = None
    limits: LimitsInput | None = None


@strawberry.type
class ToolQuery:
    """Reading tools."""

    @strawberry.field(
        description="The catalog: tools with an approved version, newest first (with mine, your own tools).",
        permission_classes=SIGNED_IN,
    )
    async def tools(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        search: str | None = None,
        mine: bool | None = False,
    ) -> ToolConnection:
        async with info.context.container.tools() as tools:
            page = await tools.page(
                info.context.signed_in_user, 20 if first is None else first, after, search, mine=bool(mine)
            )
        return ToolConnection.from_page(page)

    @strawberry.field(
        description="One tool: once approved anyone's, before that its author's and admins'.",
        permission_classes=SIGNED_IN,
    )
    async def tool(self, info: Info, slug: str) -> ToolType | None:
        async with info.context.container.tools() as tools:
            return ToolType.from_model(await tools.visible(info.context.signed_in_user, slug))

    @strawberry.field(description="The versions waiting for review, oldest first (admins).", permission_classes=ADMIN)
    async def pending_tool_versions(self, info: Info) -> list[ToolVersionType]:
        async with info.context.container.tools() as tools:
            found = await tools.pending(info.context.signed_in_user)
        return [ToolVersionType.from_model(version) for version in found]


@strawberry.type
class ToolMutation:
    """Publishing, reviewing and running tools."""

    @strawberry.mutation(
        description="Propose a version of a tool (contributors and admins); it is PENDING until reviewed.",
        permission_classes=SIGNED_IN,
    )
    async def publish_tool(self, info: Info, input: PublishToolInput) -> ToolVersionType:
        request = PublishRequest(
            script_id=input.script_id,
            slug=input.slug,
            title=input.title,
            description=input.description,
            fields=[field.form_field() for field in input.fields],
            source_visible=bool(input.source_visible),
        )
        async with info.context.container.tools() as tools:
            return ToolVersionType.from_model(await tools.publish(info.context.signed_in_user, request))

    @strawberry.mutation(
        description="Approve or reject a pending version (admins; a rejection says why).", permission_classes=ADMIN
    )
    async def review_tool_version(
        self, info: Info, id: strawberry.ID, approve: bool, note: str | None = None
    ) -> ToolVersionType:
        async with info.context.container.tools() as tools:
            version = await tools.review(info.context.signed_in_user, id, approve=approve, note=note)
            return ToolVersionType.from_model(version)

    @strawberry.mutation(
        description="Run a tool with its form's values (the script reads /tmp/inputs.json; files are in /tmp/inputs/).",
        permission_classes=SIGNED_IN,
    )
    async def run_tool(self, info: Info, input: RunToolInput) -> ExecutionType:
        user = info.context.signed_in_user
        request = RunRequest(
            slug=input.slug,
            version=input.version,
            values=input.values,
            files=[SubmittedFile(field=file.field, name=file.name, content=file.content) for file in input.files or ()],
            limits=input.limits.to_pydantic().model_dump() if input.limits else {},
        )
        async with info.context.container.tools() as tools:
            submission = await tools.submission(user, request)
        async with info.context.container.executions() as executions:
            return ExecutionType.from_model(await executions.submit(user, submission))
