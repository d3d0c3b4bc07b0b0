"""Access and refresh tokens (JWT, HS256)."""

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


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says."""

    user_id: UUID
    type: TokenType
    # The account's token version when it was issued: a token of an older version is revoked.
    version: int


def issue_token(settings: Settings, user_id: UUID, token_type: TokenType, version: int) -> str:
    """A signed token of the given type for `user_id` at the account's token `version`."""
    now = int(time.time())
    ttl = {"access": settings.auth.access_token_ttl_s, "refresh": settings.auth.refresh_token_ttl_s}[token_type]
    claims = {
        "sub": str(user_id),
        "typ": token_type,
        "ver": version,
        "iat": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm=_ALGORITHM)


def verify_token(settings: Settings, token: str, expected_type: TokenType) -> TokenClaims:
    """Check signature, algorithm, expiry and type; raise UNAUTHENTICATED on any failure."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=[_ALGORITHM],
            options={"require": ["sub", "typ", "exp", "iat"]},
        )
        user_id = UUID(claims["sub"])
        # Tokens issued before versions existed are of version 0, the version every account starts at.
        version = int(claims.get("ver", 0))
    except (jwt.InvalidTokenError, ValueError, TypeError) as error:
        raise Unauthenticated("invalid or expired token") from error
    if claims["typ"] != expected_type:
        raise Unauthenticated(f"expected a {expected_type} token")
    return TokenClaims(user_id=user_id, type=expected_type, version=version)
