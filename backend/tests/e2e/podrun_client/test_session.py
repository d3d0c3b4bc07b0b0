"""Signing in and staying signed in: the stored refresh token, and access tokens renewed as they expire."""

from __future__ import annotations

import asyncio
import base64
import json
import stat
import time
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest
from podrun_client import ExecutionStatus, LimitsInput, PodrunClient, StatusChange, SubmitExecutionInput
from podrun_client.client import Event, NotSignedIn, OutputChunk

from podrun.accounts.tokens import REFRESH_REFUSED, issue_token
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
    expired = issue_token(Settings(auth=AuthSettings(refresh_token_ttl_s=1)), UUID(me.id), "refresh", 0, uuid4())
    await asyncio.sleep(2.1)
    stored = json.loads(prun.credentials.read_text())
    prun.credentials.write_text(json.dumps({**stored, "refresh_token": expired}))
    ran = await prun.run("runs")
    assert (ran.process.returncode, ran.stderr) == (77, f"prun: not signed in ({REFRESH_REFUSED}): run `prun login`\n")


async def test_logout_ends_the_sign_in_on_the_server_so_the_old_credentials_fail(prun: Prun) -> None:
    kept = prun.credentials.read_text()
    first, second = await prun.run("logout"), await prun.run("logout")
    assert (first.process.returncode, first.stdout, first.stderr) == (0, "signed out\n", "")
    assert (second.process.returncode, second.stdout) == (0, "was not signed in\n")
    assert not prun.credentials.exists()
    # Someone who copied the credentials file before the logout holds nothing.
    prun.credentials.write_text(kept)
    ran = await prun.run("runs")
    assert (ran.process.returncode, ran.stderr) == (77, f"prun: not signed in ({REFRESH_REFUSED}): run `prun login`\n")


async def test_concurrent_pruns_take_turns_refreshing_the_one_stored_token(prun: Prun) -> None:
    # Each starts with only the stored refresh token, so each refreshes at once; a token works once.
    ran = await asyncio.gather(*(prun.run("runs") for _ in range(4)))
    assert [r.process.returncode for r in ran] == [0] * 4, [r.stderr for r in ran]
    assert (await prun.run("runs")).process.returncode == 0


async def test_logout_with_the_server_gone_still_forgets_and_says_so(prun: Prun) -> None:
    stored = json.loads(prun.credentials.read_text())
    prun.credentials.write_text(json.dumps({**stored, "url": "http://127.0.0.1:9"}))
    ran = await prun.run("logout", "--json")
    assert ran.process.returncode == 69, ran.stderr
    assert json.loads(ran.stdout) == {"forgotten": True, "revoked": False}
    assert "still live there until it expires" in ran.stderr
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
        # It took the sign-in over: the token it traded is retired, and presenting it again ends the sign-in.
        user.client.tokens.access = None
        with pytest.raises(NotSignedIn):
            await user.client.me()
        # Its access token belonged to the sign-in just ended, and its refresh token too.
        with pytest.raises(NotSignedIn):
            await resumed.me()


async def test_a_sign_in_and_its_retired_tokens_outlive_an_api_restart(user: User, deployment: Deployment) -> None:
    retired = user.client.tokens.refresh
    await user.client.refresh_session()
    await asyncio.to_thread(deployment.restart_api)
    me = (await user.client.me()).me
    assert me is not None
    assert me.email == user.email
    # The new process knows the token was traded in: presenting it again ends the sign-in.
    async with PodrunClient(deployment.base_url, refresh_token=retired) as replay:
        with pytest.raises(NotSignedIn):
            await replay.me()
    user.client.tokens.access = None
    with pytest.raises(NotSignedIn):
        await user.client.me()


async def test_a_socket_closed_by_signing_out_resumes_after_signing_in_again_without_gap_or_duplicate(
    user: User, deployment: Deployment
) -> None:
    lines = 60
    script = f"import time\nfor i in range({lines}):\n    print(i, flush=True)\n    time.sleep(0.1)\n"
    limits = LimitsInput(wallTimeMs=30_000)
    submitted = await user.client.submit_execution(input=SubmitExecutionInput(script=script, stdin="", limits=limits))
    execution_id = submitted.submit_execution.id
    seen: list[tuple[int, str]] = []
    async with PodrunClient(deployment.base_url) as watcher:
        await watcher.sign_in(user.email, PASSWORD)
        with pytest.raises(NotSignedIn):
            await _follow_and_sign_out(watcher, execution_id, seen)
        assert "5" in [text for _, text in seen]
        assert seen[-1][1] != "SUCCEEDED"
        # Back with a fresh sign-in, after the last event it saw.
        await watcher.sign_in(user.email, PASSWORD)
        async for event in watcher.follow(execution_id, after_seq=seen[-1][0]):
            seen.extend(_flat(event))
    assert [seq for seq, _ in seen] == list(range(1, lines + 4))
    assert [text for _, text in seen] == ["STARTING", "RUNNING", *(str(i) for i in range(lines)), "SUCCEEDED"]


async def _follow_and_sign_out(watcher: PodrunClient, execution_id: str, seen: list[tuple[int, str]]) -> None:
    """Follow the run into `seen`; sign out once line "5" is there."""
    signed_out = False
    async for event in watcher.follow(execution_id):
        seen.extend(_flat(event))
        if not signed_out and any(text == "5" for _, text in seen):
            # The server closes the socket (4403); the refresh the client then tries is refused.
            signed_out = (await watcher.sign_out()).sign_out


def _flat(event: Event) -> list[tuple[int, str]]:
    if isinstance(event, OutputChunk):
        return [(line.seq, line.text) for line in event.lines]
    assert isinstance(event, StatusChange)
    return [(event.seq, event.status.value)]


async def test_prun_renews_its_token_in_the_middle_of_a_run(prun: Prun, tmp_path: Path) -> None:
    path = tmp_path / "script.py"
    path.write_text("print('ready', flush=True)\nprint('got ' + input())\n")
    running = await prun.start("run", "--wall", "20s", str(path), open_stdin=True)
    await running.wait_for_stdout("ready\n")
    await asyncio.sleep(3.5)  # longer than the access token lives (2 s): sendInput needs a fresh one
    await running.write("late input\n", close=True)
    assert await running.finish() == 0, running.stderr
    assert running.stdout == "ready\ngot late input\n"
