"""Browser sessions (/auth) and the web client served at / (real PostgreSQL and Redis)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession

from podrun.accounts.tokens import REFRESH_REFUSED
from podrun.app import create_app
from podrun.db.migrate import migrate
from podrun.settings import Settings

CSRF = {"X-Podrun-CSRF": "1"}
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def migrated() -> Settings:
    settings = Settings()
    migrate(settings)
    return settings


@pytest.fixture
async def client(migrated: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=create_app(migrated)) as client:
        yield client


async def register(client: AsyncTestClient[Any]) -> str:
    email = f"web-{uuid.uuid4().hex[:12]}@example.com"
    query = "mutation($e: String!, $p: String!) { register(email: $e, password: $p) { user { id } } }"
    response = await client.post("/graphql", json={"query": query, "variables": {"e": email, "p": PASSWORD}})
    assert "errors" not in response.json()
    return email


async def whoami(client: AsyncTestClient[Any], access_token: str) -> str | None:
    response = await client.post(
        "/graphql", json={"query": "{ me { email } }"}, headers={"authorization": f"Bearer {access_token}"}
    )
    me = response.json()["data"]["me"]
    return me["email"] if me else None


async def test_sign_in_sets_an_httponly_strict_cookie_and_returns_an_access_token(
    client: AsyncTestClient[Any], migrated: Settings
) -> None:
    email = await register(client)
    response = await client.post("/auth/session", json={"email": email, "password": PASSWORD}, headers=CSRF)
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["email"] == email
    assert body["user"]["role"] == "USER"
    assert body["expiresInMs"] == migrated.auth.access_token_ttl_s * 1000 == 5 * 60 * 1000
    assert await whoami(client, body["accessToken"]) == email
    cookie = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert cookie.startswith("podrun_refresh=")
    assert {"httponly", "path", "samesite", "max-age"} <= attributes
    assert "Path=/auth" in cookie
    assert "samesite=strict" in cookie.lower()
    assert "secure" not in attributes
    assert response.headers["cache-control"] == "no-store"


async def test_refresh_rotates_the_cookie_and_sign_out_ends_the_session(client: AsyncTestClient[Any]) -> None:
    email = await register(client)
    signed_in = await client.post("/auth/session", json={"email": email, "password": PASSWORD}, headers=CSRF)
    first_cookie = signed_in.cookies["podrun_refresh"]

    refreshed = await client.post("/auth/refresh", headers=CSRF)
    assert refreshed.status_code == 200
    assert refreshed.cookies["podrun_refresh"] != first_cookie
    assert await whoami(client, refreshed.json()["accessToken"]) == email

    signed_out = await client.delete("/auth/session", headers=CSRF)
    assert (signed_out.status_code, signed_out.json()) == (200, {"signedOut": True})
    assert 'podrun_refresh=""' in signed_out.headers["set-cookie"]
    client.cookies.clear()
    after = await client.post("/auth/refresh", headers=CSRF)
    assert (after.status_code, after.json()) == (401, {"code": "UNAUTHENTICATED", "message": "not signed in"})


async def test_sign_out_revokes_the_sign_in_so_no_cookie_of_it_refreshes_again(client: AsyncTestClient[Any]) -> None:
    email = await register(client)
    signed_in = await client.post("/auth/session", json={"email": email, "password": PASSWORD}, headers=CSRF)
    first_cookie = signed_in.cookies["podrun_refresh"]
    refreshed = await client.post("/auth/refresh", headers=CSRF)
    second_cookie = refreshed.cookies["podrun_refresh"]
    access_token = refreshed.json()["accessToken"]
    assert (await client.delete("/auth/session", headers=CSRF)).status_code == 200
    # Replayed by someone who kept copies: the sign-in is over on the server, whatever the browser forgot.
    for cookie in (second_cookie, first_cookie):
        client.cookies.clear()
        client.cookies.set("podrun_refresh", cookie, path="/auth")
        replayed = await client.post("/auth/refresh", headers=CSRF)
        assert (replayed.status_code, replayed.json()) == (401, {"code": "UNAUTHENTICATED", "message": REFRESH_REFUSED})
    assert await whoami(client, access_token) is None


async def test_a_refresh_that_fails_before_its_commit_leaves_the_old_token_valid(client: AsyncTestClient[Any]) -> None:
    email = await register(client)
    await client.post("/auth/session", json={"email": email, "password": PASSWORD}, headers=CSRF)
    cookie = client.cookies["podrun_refresh"]
    armed = [True]

    def kill_the_connection(session: OrmSession) -> None:
        # PostgreSQL drops the connection after the UPDATE that retires the token, before COMMIT.
        if armed.pop() if armed else False:
            session.connection().exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")

    event.listen(OrmSession, "before_commit", kill_the_connection)
    try:
        failed = await client.post("/auth/refresh", headers=CSRF)
    finally:
        event.remove(OrmSession, "before_commit", kill_the_connection)
    assert (failed.status_code, failed.json()["code"]) == (503, "UNAVAILABLE")
    assert "set-cookie" not in failed.headers
    # The old token is still the one in force: it refreshes (no reuse detected), and then it is retired.
    client.cookies.set("podrun_refresh", cookie, path="/auth")
    refreshed = await client.post("/auth/refresh", headers=CSRF)
    assert refreshed.status_code == 200
    assert await whoami(client, refreshed.json()["accessToken"]) == email
    client.cookies.set("podrun_refresh", cookie, path="/auth")
    assert (await client.post("/auth/refresh", headers=CSRF)).status_code == 401


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/auth/session"), ("POST", "/auth/refresh"), ("DELETE", "/auth/session")]
)
async def test_every_cookie_endpoint_requires_the_csrf_header(
    client: AsyncTestClient[Any], method: str, path: str
) -> None:
    email = await register(client)
    await client.post("/auth/session", json={"email": email, "password": PASSWORD}, headers=CSRF)
    response = await client.request(method, path, json={"email": email, "password": PASSWORD})
    assert response.status_code == 403
    assert response.json() == {"code": "FORBIDDEN", "message": "missing the x-podrun-csrf header"}
    assert "set-cookie" not in response.headers


async def test_wrong_password_and_forged_cookie_are_unauthenticated(client: AsyncTestClient[Any]) -> None:
    email = await register(client)
    wrong = await client.post("/auth/session", json={"email": email, "password": "not the password"}, headers=CSRF)
    assert (wrong.status_code, wrong.json()) == (401, {"code": "UNAUTHENTICATED", "message": "wrong email or password"})
    assert "set-cookie" not in wrong.headers
    client.cookies.set("podrun_refresh", "forged", path="/auth")
    forged = await client.post("/auth/refresh", headers=CSRF)
    assert (forged.status_code, forged.json()["code"]) == (401, "UNAUTHENTICATED")


async def test_an_access_token_is_not_a_refresh_token(client: AsyncTestClient[Any]) -> None:
    email = await register(client)
    signed_in = await client.post("/auth/session", json={"email": email, "password": PASSWORD}, headers=CSRF)
    client.cookies.set("podrun_refresh", signed_in.json()["accessToken"], path="/auth")
    response = await client.post("/auth/refresh", headers=CSRF)
    assert (response.status_code, response.json()) == (
        401,
        {"code": "UNAUTHENTICATED", "message": REFRESH_REFUSED},
    )


async def test_sign_in_attempts_are_rate_limited(migrated: Settings) -> None:
    settings = migrated.model_copy(
        update={"quotas": migrated.quotas.model_copy(update={"login_attempts_per_minute": 2})}
    )
    email = f"limited-{uuid.uuid4().hex[:12]}@example.com"
    async with AsyncTestClient(app=create_app(settings)) as client:
        statuses = [
            (await client.post("/auth/session", json={"email": email, "password": PASSWORD}, headers=CSRF))
            for _ in range(3)
        ]
    assert [r.status_code for r in statuses] == [401, 401, 429]
    limited = statuses[2].json()
    assert limited["code"] == "RATE_LIMITED"
    assert 0 < limited["retryAfterMs"] <= 60_000
    assert 1 <= int(statuses[2].headers["retry-after"]) <= 61


async def test_the_cookie_is_secure_in_production(migrated: Settings) -> None:
    settings = migrated.model_copy(update={"mode": "production"})
    async with AsyncTestClient(app=create_app(settings)) as client:
        email = await register(client)
        response = await client.post("/auth/session", json={"email": email, "password": PASSWORD}, headers=CSRF)
    assert response.status_code == 200
    assert "Secure" in response.headers["set-cookie"]


@pytest.fixture
def web_dir(tmp_path: Path) -> Path:
    (tmp_path / "_app" / "immutable").mkdir(parents=True)
    (tmp_path / "index.html").write_text("<!doctype html><title>podrun spa</title>")
    (tmp_path / "_app" / "immutable" / "app.abc123.js").write_text("console.log('app')")
    (tmp_path / "robots.txt").write_text("User-agent: *")
    return tmp_path


async def test_the_web_client_is_served_at_the_root_with_deep_links(migrated: Settings, web_dir: Path) -> None:
    settings = migrated.model_copy(update={"web_dir": web_dir})
    async with AsyncTestClient(app=create_app(settings)) as client:
        for path in ["/", "/history", "/runs/0190-abc", "/../settings.py", "/%2e%2e/pyproject.toml"]:
            page = await client.get(path)
            assert (page.status_code, page.text) == (200, "<!doctype html><title>podrun spa</title>"), path
            assert page.headers["cache-control"] == "no-cache"
            assert page.headers["content-type"].startswith("text/html")
        asset = await client.get("/_app/immutable/app.abc123.js")
        assert (asset.status_code, asset.text) == (200, "console.log('app')")
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert asset.headers["content-type"].startswith(("text/javascript", "application/javascript"))
        robots = await client.get("/robots.txt")
        assert (robots.status_code, robots.text, robots.headers["cache-control"]) == (200, "User-agent: *", "no-cache")
        assert (await client.get("/healthz")).text == "ok"
        runtimes = await client.get("/graphql", params={"query": "{ runtimes { id } }"})
        assert runtimes.json()["data"]["runtimes"]


async def test_no_web_client_without_a_build(migrated: Settings, tmp_path: Path) -> None:
    settings = migrated.model_copy(update={"web_dir": tmp_path / "missing"})
    async with AsyncTestClient(app=create_app(settings)) as client:
        assert (await client.get("/")).status_code == 404
        assert (await client.get("/history")).status_code == 404
