"""Password hashing with argon2. Hashing is slow on purpose, so it runs off the event loop."""

from __future__ import annotations

import asyncio
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


@cache
def _unknown_user_hash() -> str:
    """Verifying against this when the email is unknown keeps login timing the same either way.

    Made on first use, not at import: hashing is slow, and workers and the CLI never need it.
    """
    return _hasher.hash("podrun-timing-equaliser")


async def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; takes as long for an unknown user (`password_hash=None`)."""

    def verify() -> bool:
        try:
            return _hasher.verify(password_hash or _unknown_user_hash(), password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)
