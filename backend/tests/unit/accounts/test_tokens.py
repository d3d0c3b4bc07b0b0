"""Tokens: only our own, unexpired, correctly typed HS256 tokens are accepted."""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest

from podrun.accounts.tokens import REFRESH_REFUSED, issue_token, verify_token
from podrun.core.errors import Unauthenticated
from podrun.settings import Settings

SETTINGS = Settings(jwt_secret="s" * 48)
SIGN_IN = uuid.uuid4()


def _none_token(user_id: uuid.UUID) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"sub": str(user_id), "typ": "access", "iat": now, "exp": now + 60}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def test_a_fresh_access_token_verifies() -> None:
    user_id = uuid.uuid4()
    claims = verify_token(SETTINGS, issue_token(SETTINGS, user_id, "access", 0, SIGN_IN), "access")
    assert (claims.user_id, claims.sign_in_id, claims.generation) == (user_id, SIGN_IN, 0)


def test_a_refresh_token_carries_its_sign_in_and_generation() -> None:
    user_id = uuid.uuid4()
    token = issue_token(SETTINGS, user_id, "refresh", 3, SIGN_IN, generation=7)
    claims = verify_token(SETTINGS, token, "refresh")
    assert (claims.user_id, claims.version, claims.sign_in_id, claims.generation) == (user_id, 3, SIGN_IN, 7)
    assert jwt.decode(token, SETTINGS.jwt_secret, algorithms=["HS256"])["sid"] == str(SIGN_IN)


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(
            lambda uid: issue_token(Settings(jwt_secret="o" * 48), uid, "access", 0, SIGN_IN), id="other-secret"
        ),
        pytest.param(lambda uid: issue_token(SETTINGS, uid, "refresh", 0, SIGN_IN), id="refresh-as-access"),
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
        pytest.param(
            lambda uid: jwt.encode({"sub": str(uid), "typ": "access", "iat": 1, "exp": 2**40}, SETTINGS.jwt_secret),
            id="no-sign-in",
        ),
    ],
)
def test_bad_tokens_are_refused(make_token) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Unauthenticated):
        verify_token(SETTINGS, make_token(uuid.uuid4()), "access")


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: "not.a.token", id="malformed"),
        pytest.param(
            lambda: issue_token(Settings(jwt_secret="o" * 48), uuid.uuid4(), "refresh", 0, SIGN_IN), id="forged"
        ),
        pytest.param(lambda: issue_token(SETTINGS, uuid.uuid4(), "access", 0, SIGN_IN), id="access-token"),
        pytest.param(
            lambda: jwt.encode(
                {"sub": str(uuid.uuid4()), "sid": str(SIGN_IN), "typ": "refresh", "iat": 1, "exp": 2},
                SETTINGS.jwt_secret,
            ),
            id="expired",
        ),
    ],
)
def test_every_refused_refresh_token_hears_the_same(token) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Unauthenticated) as refused:
        verify_token(SETTINGS, token(), "refresh")
    assert refused.value.message == REFRESH_REFUSED


def test_production_mode_refuses_to_start_without_a_secret() -> None:
    with pytest.raises(ValueError, match="PODRUN_JWT_SECRET"):
        Settings(mode="production", jwt_secret="")
