"""Sign-ins: one row per login, which its tokens belong to (docs/auth.md, "Authentication").

A refresh token is single-use: refreshing moves its sign-in's `generation` on in one conditional UPDATE
and commits, so a refresh that fails before the commit leaves the old token valid and one that commits
makes the new one valid, never neither. A token whose generation is behind its sign-in's was retired
by a refresh already; presenting it means two parties hold the chain (a theft, or a client that lost
an answer), so the whole sign-in is revoked and the rightful client signs in again.

Revoking commits first, then names the sign-ins on a Redis channel so that every API process closes
their sockets (app/revocations.py). A lost notice leaves a socket open but idle: each operation it
starts checks its sign-in again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from uuid import UUID

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from podrun.accounts.models import USER_AGENT_LENGTH, SignIn, User
from podrun.accounts.tokens import REFRESH_REFUSED, TokenClaims, issue_token
from podrun.core.errors import Unauthenticated
from podrun.ratelimit import client_key
from podrun.redis_client import Keys
from podrun.settings import Settings

log = structlog.get_logger(__name__)

TOKEN_REVOKED = "this token was revoked; sign in again"  # noqa: S105 - a message, not a secret


class RevokeReason(StrEnum):
    """Why a sign-in ended (kept in `sign_ins.revoked_reason`); names, not secrets (S105)."""

    SIGNED_OUT = "signed-out"
    SIGNED_OUT_EVERYWHERE = "signed-out-everywhere"
    REVOKED_BY_OWNER = "revoked-by-owner"
    REFRESH_TOKEN_REUSED = "refresh-token-reused"  # noqa: S105
    ACCOUNT_DISABLED = "account-disabled"
    PASSWORD_RESET = "password-reset"  # noqa: S105
    ROLE_CHANGED = "role-changed"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from: the client's address (ratelimit.client_address) and its user agent."""

    address: str | None
    user_agent: str | None = None

    @property
    def key(self) -> str:
        """The subject of per-client limits."""
        return client_key(self.address)


@dataclass(frozen=True, slots=True)
class Caller:
    """A user signed in with a live sign-in."""

    user: User
    sign_in_id: UUID


@dataclass(frozen=True, slots=True)
class Tokens:
    """A fresh access token and the refresh token in force of one sign-in."""

    access_token: str
    refresh_token: str


class SignIns:
    """The sign-in rows of one unit of work (the caller's database session)."""

    def __init__(self, session: AsyncSession, *, settings: Settings, redis: Redis, keys: Keys) -> None:
        self.session = session
        self.settings = settings
        self.redis = redis
        self.keys = keys

    async def start(self, user: User, origin: Origin) -> tuple[SignIn, Tokens]:
        """Record a new sign-in of `user` (committed) and its first tokens."""
        sign_in = SignIn(
            user_id=user.id,
            last_used_at=datetime.now(UTC),
            client_address=origin.address,
            user_agent=origin.user_agent[:USER_AGENT_LENGTH] if origin.user_agent else None,
        )
        self.session.add(sign_in)
        await self.session.commit()
        log.info("signed in", user_id=str(user.id), sign_in_id=str(sign_in.id))
        return sign_in, self.tokens(user, sign_in)

    def tokens(self, user: User, sign_in: SignIn) -> Tokens:
        """An access token and the refresh token of the sign-in's current generation."""
        version = user.token_version
        return Tokens(
            access_token=issue_token(self.settings, user.id, "access", version, sign_in.id),
            refresh_token=issue_token(
                self.settings, user.id, "refresh", version, sign_in.id, generation=sign_in.generation
            ),
        )

    async def rotate(self, claims: TokenClaims) -> tuple[User, Tokens]:
        """Retire the refresh token `claims` came from and issue the next (committed before it is returned).

        REFRESH_REFUSED for a retired token (and its sign-in is revoked), a revoked sign-in, or an account
        that is disabled or whose tokens were revoked.
        """
        sign_in = await self.session.scalar(
            update(SignIn)
            .where(
                SignIn.id == claims.sign_in_id,
                SignIn.user_id == claims.user_id,
                SignIn.generation == claims.generation,
                SignIn.revoked_at.is_(None),
            )
            .values(generation=SignIn.generation + 1, last_used_at=datetime.now(UTC))
            .returning(SignIn)
            .execution_options(populate_existing=True)
        )
        if sign_in is None:
            await self.session.rollback()
            await self._revoke_if_reused(claims)
            raise Unauthenticated(REFRESH_REFUSED)
        user = await self.session.get(User, claims.user_id)
        if user is None or user.disabled or user.token_version != claims.version:
            await self.session.rollback()
            raise Unauthenticated(REFRESH_REFUSED)
        await self.session.commit()
        return user, self.tokens(user, sign_in)

    async def _revoke_if_reused(self, claims: TokenClaims) -> None:
        sign_in = await self.session.get(SignIn, claims.sign_in_id)
        if (
            sign_in is None
            or sign_in.user_id != claims.user_id
            or sign_in.revoked_at is not None
            or sign_in.generation <= claims.generation
        ):
            return
        log.warning(
            "retired refresh token presented: sign-in revoked (likely a stolen token)",
            user_id=str(claims.user_id),
            sign_in_id=str(claims.sign_in_id),
            presented_generation=claims.generation,
            current_generation=sign_in.generation,
        )
        await self.revoke(claims.user_id, RevokeReason.REFRESH_TOKEN_REUSED, sign_in_id=claims.sign_in_id)
        await self.session.commit()
        await self.announce([claims.sign_in_id])

    async def live_user(self, user_id: UUID, sign_in_id: UUID, version: int) -> User:
        """The account of a token of sign-in `sign_in_id`, while both are live; UNAUTHENTICATED if not."""
        user = await self.session.scalar(
            select(User)
            .join(SignIn, SignIn.user_id == User.id)
            .where(User.id == user_id, SignIn.id == sign_in_id, SignIn.revoked_at.is_(None))
            .execution_options(populate_existing=True)
        )
        if user is None:
            raise Unauthenticated(TOKEN_REVOKED)
        if user.disabled:
            raise Unauthenticated("this account is disabled")
        if user.token_version != version:
            raise Unauthenticated(TOKEN_REVOKED)
        return user

    async def revoke(self, user_id: UUID, reason: RevokeReason, *, sign_in_id: UUID | None = None) -> list[UUID]:
        """Revoke `user_id`'s live sign-ins (only `sign_in_id`, if given) in the session's transaction; the ids.

        The caller commits, then `announce`s them.
        """
        query = update(SignIn).where(SignIn.user_id == user_id, SignIn.revoked_at.is_(None))
        if sign_in_id is not None:
            query = query.where(SignIn.id == sign_in_id)
        revoked = list(
            await self.session.scalars(
                query.values(revoked_at=datetime.now(UTC), revoked_reason=reason.value).returning(SignIn.id)
            )
        )
        if revoked:
            log.info("sign-ins revoked", user_id=str(user_id), reason=reason.value, sign_ins=len(revoked))
        return revoked

    async def announce(self, sign_in_ids: list[UUID]) -> None:
        """Tell every API process to close the sockets of these (committed) revoked sign-ins."""
        if not sign_in_ids:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for sign_in_id in sign_in_ids:
                    pipe.publish(self.keys.sign_ins_revoked, str(sign_in_id))
                await pipe.execute()
        except RedisError as error:
            # The revocation stands (it is in PostgreSQL); the sockets can start nothing more, as said above.
            log.warning("revocation notice not sent", error=type(error).__name__, sign_ins=len(sign_in_ids))

    async def live(self, user_id: UUID) -> list[SignIn]:
        """`user_id`'s sign-ins that can still refresh, most recently used first."""
        idle_since = datetime.now(UTC) - timedelta(seconds=self.settings.auth.refresh_token_ttl_s)
        return list(
            await self.session.scalars(
                select(SignIn)
                .where(SignIn.user_id == user_id, SignIn.revoked_at.is_(None), SignIn.last_used_at > idle_since)
                .order_by(SignIn.last_used_at.desc(), SignIn.id.desc())
            )
        )
