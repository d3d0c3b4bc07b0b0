"""Registration, login and token refresh."""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from redis.asyncio import Redis
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from podrun.accounts.lockout import Lockout
from podrun.accounts.models import Role, User
from podrun.accounts.passwords import hash_password, verify_password
from podrun.accounts.tokens import issue_token, verify_token
from podrun.core.errors import BadUserInput, Conflict, Forbidden, NotFound, Unauthenticated
from podrun.ratelimit import hit
from podrun.redis_client import Keys
from podrun.settings import Settings

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in user and their tokens."""

    access_token: str
    refresh_token: str
    user: User


class UserRepository(SQLAlchemyAsyncRepository[User]):
    """User rows."""

    model_type = User


class UserService(SQLAlchemyAsyncRepositoryService[User, UserRepository]):
    """Accounts and credentials. Made per unit of work by the container, with settings and Redis."""

    repository_type = UserRepository

    def __init__(self, session: AsyncSession, *, settings: Settings, redis: Redis, keys: Keys) -> None:
        super().__init__(session=session)
        self.settings = settings
        self.redis = redis
        self.keys = keys
        self.lockout = Lockout(redis, keys, settings.signin)

    async def create_user(self, email: str, password: str, role: Role = Role.USER) -> User:
        """Create an account; BAD_USER_INPUT for a malformed email or weak password, CONFLICT if taken."""
        email = normalise_email(email)
        check_password(password)
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
        """Create an account and sign it in; RATE_LIMITED after too many registrations from `client`."""
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
        return user

    async def user_for_token(self, token: str) -> User:
        """The user an access token belongs to."""
        claims = verify_token(self.settings, token, "access")
        return await self._existing_user(claims.user_id)

    async def refresh(self, refresh_token: str) -> Session:
        """A new pair of tokens for a valid refresh token."""
        claims = verify_token(self.settings, refresh_token, "refresh")
        return self.start_session(await self._existing_user(claims.user_id))

    def start_session(self, user: User) -> Session:
        """Issue an access and a refresh token for `user`."""
        return Session(
            access_token=issue_token(self.settings, user.id, "access"),
            refresh_token=issue_token(self.settings, user.id, "refresh"),
            user=user,
        )

    async def _existing_user(self, user_id: UUID) -> User:
        user = await self.get_one_or_none(id=user_id)
        if user is None:
            raise Unauthenticated("the account no longer exists")
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
        raise BadUserInput(f"password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters long")
