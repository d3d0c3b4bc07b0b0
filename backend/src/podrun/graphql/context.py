"""What every resolver can reach: the process's shared services and the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from advanced_alchemy.config import SQLAlchemyAsyncConfig
from arq.connections import ArqRedis
from strawberry.litestar import BaseContext
from strawberry.types import Info as StrawberryInfo

from podrun.accounts.models import User
from podrun.accounts.service import UserService
from podrun.errors import Unauthenticated
from podrun.redis_client import Keys
from podrun.runners.catalog import RuntimeCatalog
from podrun.settings import Settings
from podrun.streams.hub import StreamHub

BEARER = "bearer "


@dataclass
class Services:
    """Long-lived objects of the API process, built once at start-up."""

    settings: Settings
    db: SQLAlchemyAsyncConfig
    redis: ArqRedis
    hub: StreamHub
    catalog: RuntimeCatalog

    @property
    def keys(self) -> Keys:
        """Redis key names."""
        return Keys(self.settings.redis_prefix)


class Context(BaseContext, kw_only=True):
    """Per HTTP request, or per WebSocket connection (then the user is set from `connection_init`)."""

    services: Services
    connection_params: dict[str, Any] | None = None
    authenticated: bool = False
    current_user: User | None = None

    async def user(self) -> User | None:
        """The caller, or None when no credentials were sent; UNAUTHENTICATED for bad ones."""
        if not self.authenticated:
            self.current_user = await self._authenticate(self._authorization())
            self.authenticated = True
        return self.current_user

    async def require_user(self) -> User:
        """The caller; UNAUTHENTICATED when not signed in."""
        user = await self.user()
        if user is None:
            raise Unauthenticated("sign in first: send Authorization: Bearer <accessToken>")
        return user

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
        async with UserService.new(config=self.services.db) as users:
            return await users.user_for_token(self.services.settings, authorization[len(BEARER) :].strip())


Info = StrawberryInfo[Context, None]
