"""GraphQL types and resolvers for sign-ins: mySignIns, signOut, signOutEverywhere, revokeSignIn."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry

from podrun.accounts.models import SignIn
from podrun.core.errors import NotFound
from podrun.graphql.accounts import SIGNED_IN
from podrun.graphql.context import Info


@strawberry.type(name="SignIn")
class SignInType:
    """One signed-in device: a login and the tokens refreshed from it since."""

    id: strawberry.ID
    created_at: datetime = strawberry.field(description="When it signed in.")
    last_used_at: datetime = strawberry.field(
        description="When its tokens were last refreshed (access tokens are short-lived, so about when it was last "
        "active)."
    )
    address: str | None = strawberry.field(description="The client's address when it signed in.")
    user_agent: str | None = strawberry.field(description="The client's User-Agent when it signed in.")
    current: bool = strawberry.field(description="Whether it is the sign-in of this request.")

    @classmethod
    def from_model(cls, sign_in: SignIn, current_id: UUID | None) -> SignInType:
        """The GraphQL view of a sign-in row."""
        return cls(
            id=strawberry.ID(str(sign_in.id)),
            created_at=sign_in.created_at,
            last_used_at=sign_in.last_used_at,
            address=sign_in.client_address,
            user_agent=sign_in.user_agent,
            current=sign_in.id == current_id,
        )


@strawberry.type
class SignInQuery:
    """Your signed-in devices."""

    @strawberry.field(
        description="Your sign-ins that are still live, most recently used first.", permission_classes=SIGNED_IN
    )
    async def my_sign_ins(self, info: Info) -> list[SignInType]:
        caller = info.context.signed_in
        async with info.context.container.users() as users:
            return [SignInType.from_model(row, caller.sign_in_id) for row in await users.my_sign_ins(caller.user)]


@strawberry.type
class SignInMutation:
    """Ending sign-ins on the server: their tokens stop working and their sockets close."""

    @strawberry.mutation(description="Sign out: end this request's sign-in.", permission_classes=SIGNED_IN)
    async def sign_out(self, info: Info) -> bool:
        async with info.context.container.users() as users:
            await users.sign_out(info.context.signed_in)
        return True

    @strawberry.mutation(
        description="End every one of your sign-ins, this one included; the number ended.",
        permission_classes=SIGNED_IN,
    )
    async def sign_out_everywhere(self, info: Info) -> int:
        async with info.context.container.users() as users:
            return await users.sign_out_everywhere(info.context.signed_in_user)

    @strawberry.mutation(
        description="End one of your sign-ins (from mySignIns); NOT_FOUND if it is not yours or already ended.",
        permission_classes=SIGNED_IN,
    )
    async def revoke_sign_in(self, info: Info, id: strawberry.ID) -> bool:
        try:
            sign_in_id = UUID(id)
        except ValueError as error:
            raise NotFound("sign-in not found") from error
        async with info.context.container.users() as users:
            if not await users.sign_out(info.context.signed_in, sign_in_id):
                raise NotFound("sign-in not found")
        return True
