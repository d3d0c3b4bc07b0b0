"""GraphQL types and resolvers for accounts: register, login, refreshToken, me, and the user's own settings."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry
from strawberry.permission import BasePermission

from podrun.accounts.models import Role, User
from podrun.accounts.preferences import Preferences, Theme
from podrun.accounts.service import Session
from podrun.executions.repository import RunCounts
from podrun.graphql.context import Info
from podrun.graphql.permissions import IsAdmin, IsAuthenticated

strawberry.enum(
    Role,
    description=(
        "USER sees their own executions; CONTRIBUTOR may also publish tools; "
        "ADMIN sees everyone's, reviews tools and manages the system."
    ),
)
strawberry.enum(Theme, description="The colour scheme: light, dark, or the device's.")

SIGNED_IN: list[type[BasePermission]] = [IsAuthenticated]
ADMIN: list[type[BasePermission]] = [IsAdmin]


@strawberry.type(name="User")
class UserType:
    """An account."""

    id: strawberry.ID
    email: str
    role: Role
    created_at: datetime
    disabled: bool = strawberry.field(description="A disabled account cannot sign in; its tokens do not work.")
    # Counted for a whole page of users at once by the admin's `users`; otherwise on first use.
    run_counts: strawberry.Private[RunCounts | None] = None

    @classmethod
    def from_model(cls, user: User, run_counts: RunCounts | None = None) -> UserType:
        """The GraphQL view of a user row (with its run counts, if already known)."""
        return cls(
            id=strawberry.ID(str(user.id)),
            email=user.email,
            role=user.role,
            created_at=user.created_at,
            disabled=user.disabled,
            run_counts=run_counts,
        )

    @strawberry.field(description="Runs of this user waiting for a worker (admins only).", permission_classes=ADMIN)
    async def queued_executions(self, info: Info) -> int:
        return (await self._run_counts(info)).queued

    @strawberry.field(
        description="Runs of this user a worker has started and that have not ended (admins only).",
        permission_classes=ADMIN,
    )
    async def running_executions(self, info: Info) -> int:
        return (await self._run_counts(info)).running

    async def _run_counts(self, info: Info) -> RunCounts:
        if self.run_counts is None:
            owner = UUID(self.id)
            async with info.context.container.executions() as executions:
                self.run_counts = (await executions.repository.run_counts([owner]))[owner]
        return self.run_counts


@strawberry.experimental.pydantic.type(model=Preferences, all_fields=True, name="UserSettings")
class UserSettingsType:
    """Your settings, kept with your account: the theme and the editor's."""


@strawberry.input(name="UserSettingsInput")
class UserSettingsInput:
    """Settings to change; each omitted (or null) one stays as it is."""

    theme: Theme | None = None
    font_size: int | None = strawberry.field(default=None, description="8 to 32.")
    tab_size: int | None = strawberry.field(default=None, description="2, 4 or 8.")
    line_wrapping: bool | None = None


@strawberry.type
class AuthPayload:
    """Tokens for a signed-in user: send `accessToken` as a Bearer token; trade `refreshToken` for new ones."""

    access_token: str
    refresh_token: str
    user: UserType

    @classmethod
    def from_session(cls, session: Session) -> AuthPayload:
        """The payload for a new session."""
        return cls(
            access_token=session.access_token,
            refresh_token=session.refresh_token,
            user=UserType.from_model(session.user),
        )


@strawberry.type
class AccountQuery:
    """Who am I."""

    @strawberry.field(description="The signed-in user, or null without credentials.")
    async def me(self, info: Info) -> UserType | None:
        user = await info.context.user()
        return UserType.from_model(user) if user else None

    @strawberry.field(description="Your settings.", permission_classes=SIGNED_IN)
    async def my_settings(self, info: Info) -> UserSettingsType:
        async with info.context.container.users() as users:
            return UserSettingsType.from_pydantic(users.preferences(info.context.signed_in_user))


@strawberry.type
class AccountMutation:
    """Accounts and tokens."""

    @strawberry.mutation(description="Create an account and sign in.")
    async def register(self, info: Info, email: str, password: str) -> AuthPayload:
        async with info.context.container.users() as users:
            return AuthPayload.from_session(await users.register(email, password, info.context.origin))

    @strawberry.mutation(description="Sign in with email and password.")
    async def login(self, info: Info, email: str, password: str) -> AuthPayload:
        async with info.context.container.users() as users:
            return AuthPayload.from_session(await users.sign_in(email, password, info.context.origin))

    @strawberry.mutation(
        description="Trade a refresh token for a new pair of tokens. A refresh token works once: the one traded "
        "is retired, and presenting it again ends its whole sign-in."
    )
    async def refresh_token(self, info: Info, refresh_token: str) -> AuthPayload:
        async with info.context.container.users() as users:
            return AuthPayload.from_session(await users.refresh(refresh_token))

    @strawberry.mutation(
        description="Forget an account's failed sign-ins, so its owner may sign in from anywhere again (admins).",
        permission_classes=SIGNED_IN,
    )
    async def unlock_user(self, info: Info, id: strawberry.ID) -> UserType:
        async with info.context.container.users() as users:
            return UserType.from_model(await users.unlock(info.context.signed_in_user, id))

    @strawberry.mutation(description="Change some of your settings.", permission_classes=SIGNED_IN)
    async def update_my_settings(self, info: Info, input: UserSettingsInput) -> UserSettingsType:
        changes = {
            "theme": input.theme,
            "font_size": input.font_size,
            "tab_size": input.tab_size,
            "line_wrapping": input.line_wrapping,
        }
        async with info.context.container.users() as users:
            user = await users.get(info.context.signed_in_user.id)
            return UserSettingsType.from_pydantic(await users.update_preferences(user, changes))
