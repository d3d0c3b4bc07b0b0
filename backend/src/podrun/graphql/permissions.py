"""Who may call a field. Fields that act for a user declare `permission_classes=[IsAuthenticated]`, admin
fields `[IsAdmin]`."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from podrun.core.errors import Unauthenticated
from podrun.core.roles import Role
from podrun.graphql.context import Info


class IsAuthenticated(BasePermission):
    """Signed in with a valid access token; UNAUTHENTICATED otherwise."""

    message = "sign in first: send Authorization: Bearer <accessToken>"
    error_extensions = {"code": "UNAUTHENTICATED"}  # noqa: RUF012 - Strawberry reads it from the class

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        """Bad credentials raise UNAUTHENTICATED with their own message; none at all answer False."""
        return await info.context.user() is not None


class IsAdmin(BasePermission):
    """Signed in as an ADMIN; UNAUTHENTICATED without credentials, FORBIDDEN for anyone else."""

    message = "only administrators may do this"
    error_extensions = {"code": "FORBIDDEN"}  # noqa: RUF012 - Strawberry reads it from the class

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        """Whether the caller is an admin."""
        user = await info.context.user()
        if user is None:
            raise Unauthenticated(IsAuthenticated.message)
        return user.role is Role.ADMIN
