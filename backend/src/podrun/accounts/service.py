"""Accounts: registration, sign-ins and sign-outs, the user's own settings, and what admins do to accounts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import UUID

import structlog
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from podrun.accounts.live_sign_ins import LiveSignIns
from podrun.accounts.lockout import Lockout
from podrun.accounts.models import Role, SignIn, User
from podrun.accounts.passwords import hash_password, verify_password
from podrun.accounts.preferences import Preferences
from podrun.accounts.sign_ins import Caller, Origin, RevokeReason, SignIns
from podrun.accounts.strength import check_strength
from podrun.accounts.tokens import TokenClaims, verify_token
from podrun.core.errors import BadUserInput, Conflict, Forbidden, NotFound, Unauthenticated
from podrun.core.pages import check_first, decode_cursor
from podrun.core.text import storable
from podrun.policy.store import PolicyStore
from podrun.ratelimit import hit
from podrun.redis_client import Keys
from podrun.settings import Settings

log = structlog.get_logger(__name__)

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
MAX_SEARCH_LENGTH = 320
CURSOR_KIND = "user"


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in user and the tokens of their sign-in."""

    access_token: str
    refresh_token: str
    user: User
    sign_in_id: UUID


@dataclass(frozen=True, slots=True)
class UserPage:
    """One page of accounts, newest first."""

    users: list[User]
    has_next_page: bool


class UserRepository(SQLAlchemyAsyncRepository[User]):
    """User rows."""

    model_type = User

    async def page(self, first: int, before: UUID | None, search: str | None) -> list[User]:
        """Up to `first` accounts whose email contains `search`, newest first, older than `before`."""
        query = select(User).order_by(User.id.desc()).limit(first)
        if search:
            # A plain substring: the client's % and _ match themselves, not any character.
            query = query.where(func.strpos(User.email, search.lower()) > 0)
        if before is not None:
            query = query.where(User.id < before)
        return list(await self.session.scalars(query))


class UserService(SQLAlchemyAsyncRepositoryService[User, UserRepository]):
    """Accounts and credentials. Made per unit of work by the container, with settings and Redis."""

    repository_type = UserRepository

    def __init__(
        self,
        session: AsyncSession,
        *,
        settings: Settings,
        redis: Redis,
        keys: Keys,
        policy: PolicyStore,
        live_sign_ins: LiveSignIns | None = None,
    ) -> None:
        super().__init__(session=session)
        self.live_sign_ins = live_sign_ins
        self.settings = settings
        self.redis = redis
        self.keys = keys
        self.lockout = Lockout(redis, keys, settings.signin)
        self.policy = policy
        self.sign_ins = SignIns(session, settings=settings, redis=redis, keys=keys)

    async def create_user(self, email: str, password: str, role: Role = Role.USER) -> User:
        """Create an account; BAD_USER_INPUT for a malformed email or weak password, CONFLICT if taken."""
        email = normalise_email(email)
        check_password(password)
        check_strength(password, self.settings.auth.min_password_score, [email, email.partition("@")[0]])
        if await self.repository.exists(email=email):
            raise Conflict("an account with this email already exists")
        try:
            return await self.create(
                User(email=email, password_hash=await hash_password(password), role=role), auto_commit=True
            )
        except IntegrityError as error:  # a concurrent registration won the race
            await self.repository.session.rollback()
            raise Conflict("an account with this email already exists") from error

    async def register(self, email: str, password: str, origin: Origin) -> Session:
        """Create an account and sign it in; FORBIDDEN while an admin has closed registration, RATE_LIMITED after
        too many registrations from `origin`."""
        if not (await self.policy.current()).registration_open:
            raise Forbidden("registration is closed; ask an administrator for an account")
        per_hour = self.settings.signin.registrations_per_client_per_hour
        await hit(self.redis, self.keys.rate("register-client", origin.key), per_hour, 3600, "registrations from here")
        return await self.start_session(await self.create_user(email, password), origin)

    async def sign_in(self, email: str, password: str, origin: Origin) -> Session:
        """Tokens of a new sign-in for these credentials. RATE_LIMITED after too many attempts from `origin`,
        at this email from `origin`, or while failures at this account lock `origin` out (accounts/lockout.py)."""
        email = email.strip().lower()
        client = origin.key
        per_minute = self.settings.signin.attempts_per_client_per_minute
        await hit(self.redis, self.keys.rate("login-client", client), per_minute, 60, "sign-in attempts from here")
        if not storable(email):  # no account has it, and neither PostgreSQL nor a Redis key could hold it
            raise Unauthenticated("wrong email or password")
        per_email = self.settings.quotas.login_attempts_per_minute
        await hit(self.redis, self.keys.rate("login", f"{email}:{client}"), per_email, 60, "sign-in attempts")
        await self.lockout.attempt(email, client)
        try:
            user = await self.authenticate(email, password)
        except Unauthenticated:
            raise  # a wrong password: the attempt stays counted as a failure
        except BaseException:
            await self.lockout.forgive(email, client)  # not checked (an outage): no failure
            raise
        await self.lockout.forgive(email, client)
        return await self.start_session(user, origin)

    async def unlock(self, actor: User, user_id: str) -> User:
        """Forget the sign-in failures of an account (admins only): its owner may sign in from anywhere again."""
        if actor.role != Role.ADMIN:
            raise Forbidden("only an administrator may unlock accounts")
        try:
            user = await self.get_one_or_none(id=UUID(user_id))
        except ValueError as error:
            raise NotFound("no such user") from error
        if user is None:
            raise NotFound("no such user")
        await self.lockout.unlock(user.email)
        return user

    async def authenticate(self, email: str, password: str) -> User:
        """The user with these credentials; UNAUTHENTICATED otherwise (same answer for unknown email)."""
        user = await self.get_one_or_none(email=email.strip().lower())
        if not await verify_password(user.password_hash if user else None, password) or user is None:
            raise Unauthenticated("wrong email or password")
        if user.disabled:
            raise Unauthenticated("this account is disabled")
        return user

    async def user_for_token(self, token: str) -> Caller:
        """Who an access token belongs to, while the account is enabled and the token's sign-in live."""
        return await self.caller_for(verify_token(self.settings, token, "access"))

    async def caller_for(self, claims: TokenClaims) -> Caller:
        """Who a verified access token's `claims` name, while the account is enabled and the sign-in live."""
        user = await self._live_user(claims.user_id, claims.sign_in_id, claims.version)
        return Caller(user=user, sign_in_id=claims.sign_in_id)

    async def refresh(self, refresh_token: str) -> Session:
        """The next pair of tokens of a refresh token's sign-in; the presented token is retired."""
        claims = verify_token(self.settings, refresh_token, "refresh")
        user, tokens = await self.sign_ins.rotate(claims)
        return Session(tokens.access_token, tokens.refresh_token, user, claims.sign_in_id)

    async def still_signed_in(self, caller: Caller) -> Caller:
        """The caller as the account is now, if their sign-in is still live; UNAUTHENTICATED if not."""
        user = await self._live_user(caller.user.id, caller.sign_in_id, caller.user.token_version)
        return Caller(user=user, sign_in_id=caller.sign_in_id)

    async def _live_user(self, user_id: UUID, sign_in_id: UUID, version: int) -> User:
        """The account of a live sign-in: as this process remembers it (accounts/live_sign_ins.py), or queried."""
        check = partial(self.sign_ins.live_user, user_id, sign_in_id, version)
        if self.live_sign_ins is None:
            return await check()
        return await self.live_sign_ins.user(user_id, sign_in_id, version, check)

    async def start_session(self, user: User, origin: Origin) -> Session:
        """Record a new sign-in of `user` from `origin` and issue its tokens."""
        sign_in, tokens = await self.sign_ins.start(user, origin)
        return Session(tokens.access_token, tokens.refresh_token, user, sign_in.id)

    async def my_sign_ins(self, user: User) -> list[SignIn]:
        """The user's live sign-ins, most recently used first."""
        return await self.sign_ins.live(user.id)

    async def sign_out(self, caller: Caller, sign_in_id: UUID | None = None) -> int:
        """End one of the caller's sign-ins (their own by default); the number ended (0 or 1)."""
        reason = RevokeReason.SIGNED_OUT if sign_in_id in (None, caller.sign_in_id) else RevokeReason.REVOKED_BY_OWNER
        return await self._revoke(caller.user, reason, sign_in_id=sign_in_id or caller.sign_in_id)

    async def sign_out_everywhere(self, user: User) -> int:
        """End every sign-in of `user`, this one included; the number ended."""
        return await self._revoke(user, RevokeReason.SIGNED_OUT_EVERYWHERE)

    async def sign_out_refresh_token(self, refresh_token: str) -> None:
        """End the sign-in a refresh token belongs to (the web client's sign-out); nothing for a bad token."""
        try:
            claims = verify_token(self.settings, refresh_token, "refresh")
        except Unauthenticated:
            return
        user = await self.get_one_or_none(id=claims.user_id)
        if user is not None:
            await self._revoke(user, RevokeReason.SIGNED_OUT, sign_in_id=claims.sign_in_id)

    async def _revoke(self, user: User, reason: RevokeReason, *, sign_in_id: UUID | None = None) -> int:
        revoked = await self.sign_ins.revoke(user.id, reason, sign_in_id=sign_in_id)
        await self.repository.session.commit()
        await self.sign_ins.announce(revoked)
        return len(revoked)

    def preferences(self, user: User) -> Preferences:
        """The user's settings."""
        return Preferences.stored(user.preferences)

    async def update_preferences(self, user: User, changes: dict[str, Any]) -> Preferences:
        """Change some of the user's settings (None keeps one); BAD_USER_INPUT for an invalid value."""
        preferences = self.preferences(user).changed(changes)
        user.preferences = preferences.model_dump(mode="json")
        await self.update(user, auto_commit=True)
        return preferences

    async def page(self, first: int, after: str | None, search: str | None) -> UserPage:
        """Accounts whose email contains `search`, newest first, after the cursor `after` (for admins)."""
        check_first(first)
        if search is not None and len(search) > MAX_SEARCH_LENGTH:
            raise BadUserInput(f"search must be at most {MAX_SEARCH_LENGTH} characters long")
        if search is not None and "\x00" in search:
            raise BadUserInput("search must not contain NUL characters")
        before = decode_cursor(after, CURSOR_KIND) if after is not None else None
        rows = await self.repository.page(first + 1, before, search)
        return UserPage(users=rows[:first], has_next_page=len(rows) > first)

    async def set_role(self, admin: User, user_id: str, role: Role) -> User:
        """Give an account a role; an admin cannot change their own (so one always remains)."""
        user = await self._other_account(admin, user_id, "change your own role")
        if user.role == role:
            return user
        user.role = role
        user = await self._end_sessions(user, RevokeReason.ROLE_CHANGED)
        log.info("user role changed", user_id=str(user.id), role=role.value, by=str(admin.id))
        return user

    async def set_disabled(self, admin: User, user_id: str, *, disabled: bool) -> User:
        """Disable an account (its tokens and sockets stop working at once) or enable it again."""
        user = await self._other_account(admin, user_id, "disable your own account")
        if user.disabled == disabled:
            return user
        user.disabled = disabled
        user.token_version += 1
        user = await self._end_sessions(user, RevokeReason.ACCOUNT_DISABLED)
        log.info("user disabled" if disabled else "user enabled", user_id=str(user.id), by=str(admin.id))
        return user

    async def reset_password(self, admin: User, user_id: str, password: str) -> User:
        """Set the password an admin chose; every session of the account ends (it signs in with the new one)."""
        check_password(password)
        user = await self._account(user_id)
        check_strength(password, self.settings.auth.min_password_score, [user.email, user.email.partition("@")[0]])
        user.password_hash = await hash_password(password)
        user.token_version += 1
        user = await self._end_sessions(user, RevokeReason.PASSWORD_RESET)
        log.info("user password reset", user_id=str(user.id), by=str(admin.id))
        return user

    async def _end_sessions(self, user: User, reason: RevokeReason) -> User:
        # The account's change and the end of its sign-ins commit together; then the API processes close
        # the sockets of those sign-ins (accounts/sign_ins.py).
        user = await self.update(user, auto_commit=False)
        revoked = await self.sign_ins.revoke(user.id, reason)
        await self.repository.session.commit()
        await self.sign_ins.announce(revoked)
        return user

    async def _account(self, user_id: str) -> User:
        try:
            key = UUID(user_id)
        except ValueError as error:
            raise NotFound("user not found") from error
        user = await self.get_one_or_none(id=key)
        if user is None:
            raise NotFound("user not found")
        return user

    async def _other_account(self, admin: User, user_id: str, what: str) -> User:
        user = await self._account(user_id)
        if user.id == admin.id:
            raise Conflict(f"you cannot {what}")
        return user


def normalise_email(email: str) -> str:
    """Lower-cased and trimmed; BAD_USER_INPUT when it does not look like an email."""
    email = email.strip().lower()
    if len(email) > 320 or not _EMAIL.match(email):
        raise BadUserInput("email is not a valid address")
    return email


def check_password(password: str) -> None:
    """BAD_USER_INPUT for a password that is too short or too long."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise BadUserInput(
            f"password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters long", field="password"
        )
