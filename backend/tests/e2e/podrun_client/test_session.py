"""Signing in and staying signed in: the stored refresh token, and access tokens renewed as they expire."""

from __future__ import annotations

import asyncio
import base64
import json
import stat
import time
from pathlib import Path
from uuid import UUID

import httpx
from podrun_client import ExecutionStatus, PodrunClient, StatusChange, SubmitExecutionInput

from podrun.accounts.tokens import issue_token
from podrun.settings import AuthSettings, Settings
from tests.e2e.podrun_client.conftest import PASSWORD, Deployment, User
from tests.e2e.podrun_client.prun import Prun


def expiry(token: str) -> float:
    """The `exp` claim of a JWT (read, not verified)."""
    payload = token.split(".")[1]
    return float(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"])


async def until_expired(token: str) -> None:
    await asyncio.sleep(max(0.0, expiry(token) + 1 - time.time()))


async def refused(deployment: Deployment, token: str) -> bool:
    """Whether the server turns this access token away."""
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{deployment.base_url}/graphql",
            json={"query": "{ me { id } }"},
            headers={"authorization": f"Bearer {token}"},
        )
    return [error["extensions"]["code"] for error in response.json().get("errors", [])] == ["UNAUTHENTICATED"]


async def test_login_keeps_a_refresh_token_for_the_owner_only_and_never_the_password(
    prun: Prun, user: User, deployment: Deployment
) -> None:
    stored = json.loads(prun.credentials.read_text())
    assert set(stored) == {"url", "email", "refresh_token"}
    assert (stored["url"], stored["email"]) == (deployment.base_url, user.email)
    assert PASSWORD not in prun.credentials.read_text()
    assert stat.S_IMODE(prun.credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE(prun.credentials.parent.stat().st_mode) == 0o700
    listed = await prun.run("runs")
    assert listed.process.returncode == 0, listed.stderr


async def test_login_on_a_terminal_asks_without_echoing_the_password(
    user: User, deployment: Deployment, tmp_path: Path, prun_executable: Path
) -> None:
    prun = Prun(prun_executable, tmp_path / "config")
    terminal = prun.terminal("login", "--url", deployment.base_url)
    await terminal.wait_for("Email: ")
    terminal.type(f"{user.email}\n".encode())
    await terminal.wait_for("Password: ")
    terminal.type(f"{PASSWORD}\n".encode())
    assert await terminal.finish() == 0
    assert PASSWORD not in terminal.text
    assert f"signed in to {deployment.base_url} as {user.email}" in terminal.text
    assert prun.credentials.exists()


async def test_a_wrong_password_exits_77_and_stores_nothing(
    user: User, deployment: Deployment, tmp_path: Path, prun_executable: Path
) -> None:
    prun = Prun(prun_executable, tmp_path / "config")
    ran = await prun.run(
        "login", "--url", deployment.base_url, "--email", user.email, "--password-stdin", stdin="wrong password\n"
    )
    assert (ran.process.returncode, ran.stderr) == (77, "prun: UNAUTHENTICATED: wrong email or password\n")
    assert not prun.credentials.exists()


async def test_without_a_sign_in_commands_exit_77(tmp_path: Path, prun_executable: Path) -> None:
    ran = await Prun(prun_executable, tmp_path / "config").run("runs")
    assert (ran.process.returncode, ran.stderr) == (77, "prun: not signed in (no stored sign-in): run `prun login`\n")


async def test_an_expired_refresh_token_means_signing_in_again(prun: Prun, user: User) -> None:
    me = (await user.client.me()).me
    assert me is not None
    expired = issue_token(Settings(auth=AuthSettings(refresh_token_ttl_s=-60)), UUID(me.id), "refresh", 0)
    stored = json.loads(prun.credentials.read_text())
    prun.credentials.write_text(json.dumps({**stored, "refresh_token": expired}))
    ran = await prun.run("runs")
    assert (ran.process.returncode, ran.stderr) == (
        77,
        "prun: not signed in (invalid or expired token): run `prun login`\n",
    )


async def test_logout_forgets_the_sign_in(prun: Prun) -> None:
    first, second = await prun.run("logout"), await prun.run("logout")
    assert (first.process.returncode, first.stdout) == (0, "signed out\n")
    assert (second.process.returncode, second.stdout) == (0, "was not signed in\n")
    assert not prun.credentials.exists()


async def test_an_expired_access_token_is_renewed_over_http(user: User, deployment: Deployment) -> None:
    sessions: list[str] = []
    user.client.on_session = lambda session: sessions.append(session.access_token)
    old = user.client.tokens.access
    assert old is not None
    await until_expired(old)
    assert await refused(deployment, old)
    # Three calls find the token expired at once; one refresh serves them all.
    me, runtimes, executions = await asyncio.gather(
        user.client.me(), user.client.runtimes(), user.client.executions(first=1)
    )
    assert me.me is not None
    assert me.me.email == user.email
    assert runtimes.runtimes
    assert executions.executions.edges == []
    assert sessions == [user.client.tokens.access]
    assert sessions[0] != old


async def test_an_expired_access_token_is_renewed_for_a_websocket(user: User, deployment: Deployment) -> None:
    submitted = await user.client.submit_execution(input=SubmitExecutionInput(script="print('hi')", stdin=""))
    old = user.client.tokens.access
    assert old is not None
    await until_expired(old)
    assert await refused(deployment, old)
    # connection_init with the expired token is refused (4403); the client refreshes and connects again.
    events = [event async for event in user.client.follow(submitted.submit_execution.id)]
    assert isinstance(events[-1], StatusChange)
    assert events[-1].status is ExecutionStatus.SUCCEEDED
    assert user.client.tokens.access != old


async def test_a_client_resumed_from_a_refresh_token_alone_signs_itself_in(user: User, deployment: Deployment) -> None:
    async with PodrunClient(deployment.base_url, refresh_token=user.client.tokens.refresh) as resumed:
        me = (await resumed.me()).me
        assert me is not None
        assert me.email == user.email


async def test_prun_renews_its_token_in_the_middle_of_a_run(prun: Prun, tmp_path: Path) -> None:
    path = tmp_path / "script.py"
    path.write_text("print('ready', flush=True)\nprint('got ' + input())\n")
    running = await prun.start("run", "--wall", "20s", str(path), open_stdin=True)
    await running.wait_for_stdout("ready\n")
    await asyncio.sleep(3.5)  # longer than the access token lives (2 s): sendInput needs a fresh one
    await running.write("late input\n", close=True)
    assert await running.finish() == 0, running.stderr
    assert running.stdout == "ready\ngot late input\n"
