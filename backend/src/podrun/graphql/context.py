"""What every resolver can reach: the process's container and the caller."""

from __future__ import annotations

from typing import Any

from msgspec import field
from strawberry.litestar import BaseContext
from strawberry.types import Info as StrawberryInfo

from podrun.accounts.models import User
from podrun.container import Container
from podrun.core.errors import Unauthenticated
from podrun.graphql.snapshots import StatusSnapshots
from podrun.ratelimit import client_key

BEARER = "bearer "


class Context(BaseContext, kw_only=True):
    """Per HTTP request, or per WebSocket connection (then the user is set from `connection_init`)."""

    container: Container
    # Shared by every connection of the process (the app passes its one); a fresh one serves alone.
    snapshots: StatusSnapshots[Any] = field(default_factory=StatusSnapshots)
    connection_params: dict[str, Any] | None = None
    authenticated: bool = False
    current_user: User | None = None

    async def user(self) -> User | None:
        """The caller, or None when no credentials were sent; UNAUTHENTICATED for bad ones.

        A socket's account is checked again at every operation it starts, so one disabled (or whose
        tokens were revoked) while connected can start nothing more.
        """
        if not self.authenticated:
            self.current_user = await self._authenticate(self._authorization())
            self.authenticated = True
        elif self.websocket is not None and self.current_user is not None:
            # Not the token again (it may expire while the socket lives): the account it was issued for.
            async with self.container.users() as users:
                self.current_user = await users.still_signed_in(self.current_user)
        return self.current_user

    @property
    def signed_in_user(self) -> User:
        """The caller of a field guarded by `IsAuthenticated` (graphql/permissions.py)."""
        if self.current_user is None:
            raise Unauthenticated("sign in first: send Authorization: Bearer <accessToken>")
        return self.current_user

    @property
    def client(self) -> str:
        """The caller's address as per-client limits key it (podrun.ratelimit.client_key)."""
        connection = self.request if self.request is not None else self.websocket
        address = connection.client.host if connection is not None and connection.client is not None else None
        return client_key(address)

    def _authorization(self) -> str | None:
        if self.request is not None:
            return self.request.headers.get("authorization")
        # GraphiQL forwards its Headers tab as the payload, so the key may be capitalised.
        params = {str(key).lower(): value for key, value in (self.connection_params or {}).items()}
        value = params.get("authorization")
        return value if isinstance(value, str) else None

    async def _authenticate(self, authorization: str | None) -> User | None:
        if authorization is None:
            return None
        if not authorization.lower().startswith(BEARER):
            raise Unauthenticated("Authorization must be 'Bearer <accessToken>'")
        async with self.container.users() as users:
            return await users.user_for_token(authorization[len(BEARER) :].strip())


Info = StrawberryInfo[Context, None]
