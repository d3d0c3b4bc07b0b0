"""What every resolver can reach: the process's container and the caller."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar.connection import ASGIConnection
from msgspec import field
from strawberry.litestar import BaseContext
from strawberry.types import Info as StrawberryInfo

from podrun.accounts.models import User
from podrun.accounts.sign_ins import Caller, Origin
from podrun.accounts.tokens import verify_token
from podrun.client_address import client_address
from podrun.container import Container
from podrun.core.errors import Unauthenticated
from podrun.graphql.loaders import Loaders
from podrun.graphql.snapshots import StatusSnapshots
from podrun.settings import Settings

BEARER = "bearer "


class Context(BaseContext, kw_only=True):
    """Per HTTP request, or per WebSocket connection (then the user is set from `connection_init`)."""

    container: Container
    # Shared by every connection of the process (the app passes its one); a fresh one serves alone.
    snapshots: StatusSnapshots[Any] = field(default_factory=StatusSnapshots)
    connection_params: dict[str, Any] | None = None
    authenticated: bool = False
    caller: Caller | None = None
    _loaders: Loaders | None = None

    @property
    def loaders(self) -> Loaders:
        """The DataLoaders of per-row fields (graphql/loaders.py), made on first use."""
        if self._loaders is None:
            self._loaders = Loaders(self.container)
        return self._loaders

    @property
    def current_user(self) -> User | None:
        """The signed-in user, once `user()` has authenticated them."""
        return self.caller.user if self.caller is not None else None

    async def user(self) -> User | None:
        """The caller, or None when no credentials were sent; UNAUTHENTICATED for bad ones.

        A socket's sign-in and account are checked again at every operation it starts, so one whose
        sign-in was revoked (or whose account was disabled or given another role) while connected
        can start nothing more, nor anything its new role does not allow.
        """
        if not self.authenticated:
            self.caller = await self._authenticate(self._authorization())
            self.authenticated = True
        elif self.websocket is not None and self.caller is not None:
            # Not the token again (it may expire while the socket lives): the sign-in it was issued for.
            if (
                remembered := self._remembered(
                    self.caller.user.id, self.caller.sign_in_id, self.caller.user.token_version
                )
            ) is not None:
                self.caller = remembered
            else:
                async with self.container.users() as users:
                    self.caller = await users.still_signed_in(self.caller)
        return self.current_user

    def _remembered(self, user_id: UUID, sign_in_id: UUID, version: int) -> Caller | None:
        """The caller of a sign-in this process remembers as live (accounts/live_sign_ins.py): no session needed."""
        live = self.container.live_sign_ins
        user = live.remembered(user_id, sign_in_id, version) if live is not None else None
        return None if user is None else Caller(user=user, sign_in_id=sign_in_id)

    @property
    def signed_in_user(self) -> User:
        """The caller of a field guarded by `IsAuthenticated` (graphql/permissions.py)."""
        return self.signed_in.user

    @property
    def signed_in(self) -> Caller:
        """The caller and their sign-in, in a field guarded by `IsAuthenticated`."""
        if self.caller is None:
            raise Unauthenticated("sign in first: send Authorization: Bearer <accessToken>")
        return self.caller

    @property
    def sign_in_id(self) -> UUID | None:
        """The caller's sign-in, if signed in."""
        return self.caller.sign_in_id if self.caller is not None else None

    @property
    def origin(self) -> Origin:
        """Where the request (or the socket) came from."""
        connection = self.request if self.request is not None else self.websocket
        return origin_of(connection, self.container.settings)

    @property
    def client(self) -> str:
        """The caller's address as per-client limits key it (podrun.ratelimit.client_key)."""
        return self.origin.key

    def _authorization(self) -> str | None:
        if self.request is not None:
            return self.request.headers.get("authorization")
        # GraphiQL forwards its Headers tab as the payload, so the key may be capitalised.
        params = {str(key).lower(): value for key, value in (self.connection_params or {}).items()}
        value = params.get("authorization")
        return value if isinstance(value, str) else None

    async def _authenticate(self, authorization: str | None) -> Caller | None:
        if authorization is None:
            return None
        if not authorization.lower().startswith(BEARER):
            raise Unauthenticated("Authorization must be 'Bearer <accessToken>'")
        token = authorization[len(BEARER) :].strip()
        claims = verify_token(self.container.settings, token, "access")
        if (remembered := self._remembered(claims.user_id, claims.sign_in_id, claims.version)) is not None:
            return remembered
        async with self.container.users() as users:
            return await users.caller_for(claims)


def origin_of(connection: ASGIConnection[Any, Any, Any, Any] | None, settings: Settings) -> Origin:
    """The client's address (believing only trusted proxies, client_address.py) and user agent."""
    if connection is None:
        return Origin(address=None)
    peer = connection.client.host if connection.client is not None else None
    header_values = connection.headers.getall(settings.proxies.header, [])
    return Origin(
        address=client_address(peer, header_values, settings.proxies),
        user_agent=connection.headers.get("user-agent"),
    )


Info = StrawberryInfo[Context, None]
