"""GraphQL types and resolvers for accounts: register, login, refreshToken, me."""

from __future__ import annotations

from datetime import datetime

import strawberry

from podrun.accounts.models import Role, User
from podrun.accounts.service import Session
from podrun.graphql.context import Info
from podrun.graphql.permissions import IsAuthenticated

strawberry.enum(Role, description="USER sees their own executions; ADMIN sees everyone's.")


@strawberry.type(name="User")
class UserType:
    """An account."""

    id: strawberry.ID
    email: str
    role: Role
    created_at: datetime

    @classmethod
    def from_model(cls, user: User) -> UserType:
        """The GraphQL view of a user row."""
        return cls(id=strawberry.ID(str(user.id)), email=user.email, role=user.role, created_at=user.created_at)


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


@strawberry.type
class AccountMutation:
    """Accounts and tokens."""

    @strawberry.mutation(description="Create an account and sign in.")
    async def register(self, info: Info, email: str, password: str) -> AuthPayload:
        async with info.context.container.users() as users:
            return AuthPayload.from_session(await users.register(email, password, info.context.client))

    @strawberry.mutation(description="Sign in with email and password.")
    async def login(self, info: Info, email: str, password: str) -> AuthPayload:
        async with info.context.container.users() as users:
            return AuthPayload.from_session(await users.sign_in(email, password, info.context.client))

    @strawberry.mutation(description="Trade a refresh token for a new pair of tokens.")
    async def refresh_token(self, info: Info, refresh_token: str) -> AuthPayload:
        async with info.context.container.users() as users:
            return AuthPayload.from_session(await users.refresh(refresh_token))

    @strawberry.mutation(
        description="Forget an account's failed sign-ins, so its owner may sign in from anywhere again (admins).",
        permission_classes=[IsAuthenticated],
    )
    async def unlock_user(self, info: Info, id: strawberry.ID) -> UserType:
        async with info.context.container.users() as users:
            return UserType.from_model(await users.unlock(info.context.signed_in_user, id))
