"""Tokens: only our own, unexpired, correctly typed HS256 tokens are accepted."""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest

from podrun.accounts.tokens import issue_token, verify_token
from podrun.core.errors import Unauthenticated
from podrun.settings import Settings

SETTINGS = Settings(jwt_secret="s" * 48)


def _none_token(user_id: uuid.UUID) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"sub": str(user_id), "typ": "access", "iat": now, "exp": now + 60}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def test_a_fresh_access_token_verifies() -> None:
    user_id = uuid.uuid4()
    claims = verify_token(SETTINGS, issue_token(SETTINGS, user_id, "access", 0), "access")
    assert claims.user_id == user_id


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda uid: issue_token(Settings(jwt_secret="o" * 48), uid, "access", 0), id="other-secret"),
        pytest.param(lambda uid: issue_token(SETTINGS, uid, "refresh", 0), id="refresh-as-access"),
        pytest.param(_none_token, id="alg-none"),
        pytest.param(
            lambda uid: jwt.encode(
                {"sub": str(uid), "typ": "access", "iat": 1, "exp": 2}, SETTINGS.jwt_secret, algorithm="HS256"
            ),
            id="expired",
        ),
        pytest.param(lambda uid: "not.a.token", id="garbage"),
        pytest.param(
            lambda uid: jwt.encode({"sub": "nope", "typ": "access", "iat": 1, "exp": 2**40}, SETTINGS.jwt_secret),
            id="bad-subject",
        ),
    ],
)
def test_bad_tokens_are_refused(make_token) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Unauthenticated):
        verify_token(SETTINGS, make_token(uuid.uuid4()), "access")


def test_production_mode_refuses_to_start_without_a_secret() -> None:
    with pytest.raises(ValueError, match="PODRUN_JWT_SECRET"):
        Settings(mode="production", jwt_secret="")
