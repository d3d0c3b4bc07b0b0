"""Accounts: registration, login, token refresh, the user's own settings, and what admins do to accounts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from podrun.accounts.lockout import Lockout
from podrun.accounts.models import Role, User
from podrun.accounts.passwords import hash_password, verify_password
from podrun.accounts.preferences import Preferences
from podrun.accounts.strength import check_strength
from podrun.accounts.tokens import issue_token, verify_token
from podrun.core.errors import BadUserInput, Conflict, Forbidden, NotFound, Unauthenticated
from podrun.core.pages import check_first, decode_cursor
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
    """A signed-in user and their tokens."""

    access_token: str
    refresh_token: str
    user: User


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
        self, session: AsyncSession, *, settings: Settings, redis: Redis, keys: Keys, policy: PolicyStore
    ) -> None:
        super().__init__(session=session)
        self.settings = settings
        self.redis = redis
        self.keys = keys
        self.lockout = Lockout(redis, keys, settings.signin)
        self.policy = policy

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

    async def register(self, email: str, password: str, client: str) -> Session:
        """Create an account and sign it in; FORBIDDEN while an admin has closed registration, RATE_LIMITED after
        too many registrations from `client`."""
        if not (await self.policy.current()).registration_open:
            raise Forbidden("registration is closed; ask an administrator for an account")
        per_hour = self.settings.signin.registrations_per_client_per_hour
        await hit(self.redis, self.keys.rate("register-client", client), per_hour, 3600, "registrations from here")
        return self.start_session(await self.create_user(email, password))

    async def sign_in(self, email: str, password: str, client: str) -> Session:
        """Tokens for these credentials. RATE_LIMITED after too many attempts from `client` (a `client_key`),
        at this email from `client`, or while failures at this account lock `client` out (accounts/lockout.py)."""
        email = email.strip().lower()
        per_minute = self.settings.signin.attempts_per_client_per_minute
        await hit(self.redis, self.keys.rate("login-client", client), per_minute, 60, "sign-in attempts from here")
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
        return self.start_session(user)

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

    async def user_for_token(self, token: str) -> User:
        """The user an access token belongs to, while the account is enabled and the token not revoked."""
        claims = verify_token(self.settings, token, "access")
        return await self._current_user(claims.user_id, claims.version)

    async def refresh(self, refresh_token: str) -> Session:
        """A new pair of tokens for a valid refresh token."""
        claims = verify_token(self.settings, refresh_token, "refresh")
        return self.start_session(await self._current_user(claims.user_id, claims.version))

    async def still_signed_in(self, user: User) -> User:
        """The account as it is now, if the session `user` was read for is still valid; UNAUTHENTICATED if not."""
        return await self._current_user(user.id, user.token_version)

    def start_session(self, user: User) -> Session:
        """Issue an access and a refresh token for `user`."""
        return Session(
            access_token=issue_token(self.settings, user.id, "access", user.token_version),
            refresh_token=issue_token(self.settings, user.id, "refresh", user.token_version),
            user=user,
        )

    async def _current_user(self, user_id: UUID, token_version: int) -> User:
        user = await self.get_one_or_none(id=user_id)
        if user is None:
            raise Unauthenticated("the account no longer exists")
        if user.disabled:
            raise Unauthenticated("this account is disabled")
        if token_version != user.token_version:
            raise Unauthenticated("this token was revoked; sign in again")
        return user

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
        user.role = role
        user = await self.update(user, auto_commit=True)
        log.info("user role changed", user_id=str(user.id), role=role.value, by=str(admin.id))
        return user

    async def set_disabled(self, admin: User, user_id: str, *, disabled: bool) -> User:
        """Disable an account (its tokens and sockets stop working at once) or enable it again."""
        user = await self._other_account(admin, user_id, "disable your own account")
        if user.disabled == disabled:
            return user
        user.disabled = disabled
        user.token_version += 1
        user = await self.update(user, auto_commit=True)
        log.info("user disabled" if disabled else "user enabled", user_id=str(user.id), by=str(admin.id))
        await self._end_sessions(user)
        return user

    async def reset_password(self, admin: User, user_id: str, password: str) -> User:
        """Set the password an admin chose; every session of the account ends (it signs in with the new one)."""
        check_password(password)
        user = await self._account(user_id)
        check_strength(password, self.settings.auth.min_password_score, [user.email, user.email.partition("@")[0]])
        user.password_hash = await hash_password(password)
        user.token_version += 1
        user = await self.update(user, auto_commit=True)
        log.info("user password reset", user_id=str(user.id), by=str(admin.id))
        await self._end_sessions(user)
        return user

    async def _end_sessions(self, user: User) -> None:
        # Tokens are checked against the row on every request; open sockets are closed by the API
        # processes that hold them (app/revocations.py). A lost notice leaves a socket open until
        # it reconnects, but never lets it start anything: each operation checks the account again.
        await self.redis.publish(self.keys.users_revoked, str(user.id))

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
