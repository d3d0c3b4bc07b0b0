"""Access and refresh tokens (JWT, HS256), each belonging to one sign-in (accounts/sign_ins.py)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

import jwt

from podrun.core.errors import Unauthenticated
from podrun.settings import Settings

TokenType = Literal["access", "refresh"]
_ALGORITHM = "HS256"
# Every refused refresh token hears the same: unknown, malformed, expired, retired and revoked ones alike.
REFRESH_REFUSED = "this refresh token is not valid; sign in again"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says."""

    user_id: UUID
    type: TokenType
    # The account's token version when it was issued: a token of an older version is revoked.
    version: int
    # The sign-in the token belongs to; revoking it revokes the token.
    sign_in_id: UUID
    # A refresh token's place in its sign-in's chain of refreshes (0 for an access token).
    generation: int


def issue_token(
    settings: Settings, user_id: UUID, token_type: TokenType, version: int, sign_in_id: UUID, *, generation: int = 0
) -> str:
    """A signed token of the given type for `user_id` at the account's token `version`, in sign-in `sign_in_id`."""
    now = int(time.time())
    ttl = {"access": settings.auth.access_token_ttl_s, "refresh": settings.auth.refresh_token_ttl_s}[token_type]
    claims = {
        "sub": str(user_id),
        "typ": token_type,
        "ver": version,
        "sid": str(sign_in_id),
        "gen": generation,
        "iat": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm=_ALGORITHM)


def verify_token(settings: Settings, token: str, expected_type: TokenType) -> TokenClaims:
    """Check signature, algorithm, expiry, type and sign-in; raise UNAUTHENTICATED on any failure.

    A refresh token that fails says only REFRESH_REFUSED, so its answer tells a thief nothing.
    """
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=[_ALGORITHM],
            options={"require": ["sub", "typ", "exp", "iat", "sid"]},
        )
        user_id = UUID(claims["sub"])
        sign_in_id = UUID(claims["sid"])
        version = int(claims.get("ver", 0))
        generation = int(claims.get("gen", 0))
    except (jwt.InvalidTokenError, ValueError, TypeError) as error:
        raise Unauthenticated(_refused(expected_type, "invalid or expired token")) from error
    if claims["typ"] != expected_type:
        raise Unauthenticated(_refused(expected_type, f"expected a {expected_type} token"))
    return TokenClaims(
        user_id=user_id, type=expected_type, version=version, sign_in_id=sign_in_id, generation=generation
    )


def _refused(expected_type: TokenType, message: str) -> str:
    return REFRESH_REFUSED if expected_type == "refresh" else message
