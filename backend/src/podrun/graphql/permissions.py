"""Who may call a field. Fields that act for a user declare `permission_classes=[IsAuthenticated]`."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from podrun.graphql.context import Info


class IsAuthenticated(BasePermission):
    """Signed in with a valid access token; UNAUTHENTICATED otherwise."""

    message = "sign in first: send Authorization: Bearer <accessToken>"
    error_extensions = {"code": "UNAUTHENTICATED"}  # noqa: RUF012 - Strawberry reads it from the class

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        """Bad credentials raise UNAUTHENTICATED with their own message; none at all answer False."""
        return await info.context.user() is not None
