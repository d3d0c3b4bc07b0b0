"""Runs shared by link: share, read without sign-in, follow live, download figures with the token, revoke."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from podrun.settings import Settings
from tests.client import GraphQLClient, GraphQLFailure
from tests.e2e.helpers import (
    assert_consecutive,
    collect,
    execution,
    final,
    flatten,
    lines,
    submit,
    wait_for_status,
)
from tests.e2e.test_artifacts import HAND_MADE_FIGURE, PNG

SHARE = """
mutation($id: ID!, $input: Boolean) {
  shareExecution(id: $id, includeInput: $input) { token url includeInput execution { id } }
}
"""
UNSHARE = "mutation($id: ID!) { unshareExecution(id: $id) }"
SHARED = """
query($token: String!) {
  sharedExecution(token: $token) {
    id status script stdin stdout stderr exitCode includesInput runtime { id } usage { wallTimeMs }
    inputFiles { name content } artifacts { id name url } createdAt finishedAt
  }
}
"""
SHARED_EVENTS = """
subscription($token: String!, $after: Int) {
  sharedExecutionEvents(token: $token, afterSeq: $after) {
    __typename
    ... on OutputChunk { lines { seq stream text partial at } }
    ... on ArtifactCreated { seq artifact { id name url } }
    ... on SharedStatusChange { seq status execution { id status exitCode stdout } }
  }
}
"""
DELETE = "mutation($id: ID!) { deleteExecution(id: $id) }"


async def share(client: GraphQLClient, execution_id: str, include_input: bool | None = None) -> dict[str, Any]:
    data = await client.execute(SHARE, {"id": execution_id, "input": include_input})
    return data["shareExecution"]  # type: ignore[no-any-return]


async def shared(client: GraphQLClient, token: str) -> dict[str, Any] | None:
    return (await client.execute(SHARED, {"token": token}))["sharedExecution"]  # type: ignore[no-any-return]


async def finished_run(client: GraphQLClient, script: str, **fields: Any) -> str:
    execution_id = await submit(client, script, **fields)
    assert final(await collect(client, execution_id))["status"] == "SUCCEEDED"
    return execution_id


async def test_a_shared_run_reads_without_sign_in_and_hides_its_input(
    alice: GraphQLClient, anonymous: GraphQLClient, podrun: str
) -> None:
    files = [{"name": "data.txt", "content": base64.b64encode(b"secret file").decode()}]
    execution_id = await finished_run(
        alice, "print(input().upper())\nprint(open('data.txt').read())", stdin="secret stdin\n", files=files
    )
    link = await share(alice, execution_id)
    assert link["execution"]["id"] == execution_id
    assert link["includeInput"] is False
    assert link["url"] == f"{podrun.rstrip('/')}/shared/{link['token']}"
    assert len(link["token"]) >= 43

    view = await shared(anonymous, link["token"])
    assert view is not None
    assert (view["id"], view["status"], view["exitCode"]) == (execution_id, "SUCCEEDED", 0)
    assert view["script"].startswith("print(input().upper())")
    assert view["stdout"] == "SECRET STDIN\nsecret file\n"
    assert (view["stdin"], view["inputFiles"], view["includesInput"]) == (None, None, False)
    assert view["usage"]["wallTimeMs"] is not None
    assert view["finishedAt"] is not None

    with_input = await share(alice, execution_id, include_input=True)
    view = await shared(anonymous, with_input["token"])
    assert view is not None
    assert (view["stdin"], view["inputFiles"], view["includesInput"]) == ("secret stdin\n", files, True)
    # Sharing again made a new link and revoked the first.
    assert await shared(anonymous, link["token"]) is None


async def test_only_the_token_hash_is_stored(alice: GraphQLClient, settings: Settings) -> None:
    execution_id = await finished_run(alice, "print(1)")
    token = (await share(alice, execution_id))["token"]
    engine = create_async_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            stored = (
                await connection.execute(
                    text("SELECT token_hash FROM execution_shares WHERE execution_id = :id"), {"id": execution_id}
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    assert stored == hashlib.sha256(token.encode()).hexdigest()


async def test_unsharing_and_unknown_tokens_read_as_null(alice: GraphQLClient, anonymous: GraphQLClient) -> None:
    execution_id = await finished_run(alice, "print('hi')")
    token = (await share(alice, execution_id))["token"]
    assert (await alice.execute(UNSHARE, {"id": execution_id}))["unshareExecution"] is True
    assert await shared(anonymous, token) is None
    assert (await alice.execute(UNSHARE, {"id": execution_id}))["unshareExecution"] is False
    assert await shared(anonymous, "not-a-token") is None
    assert await shared(anonymous, "x" * 10_000) is None


async def test_deleting_a_run_removes_its_share(alice: GraphQLClient, anonymous: GraphQLClient) -> None:
    execution_id = await finished_run(alice, "print('hi')")
    token = (await share(alice, execution_id))["token"]
    await alice.execute(DELETE, {"id": execution_id})
    assert await shared(anonymous, token) is None


async def test_another_users_run_is_not_found(
    alice: GraphQLClient, bob: GraphQLClient, anonymous: GraphQLClient
) -> None:
    execution_id = await finished_run(alice, "print('hi')")
    for mutation in (SHARE, UNSHARE):
        with pytest.raises(GraphQLFailure) as refused:
            await bob.execute(mutation, {"id": execution_id})
        assert refused.value.code == "NOT_FOUND"
    with pytest.raises(GraphQLFailure) as signed_out:
        await anonymous.execute(SHARE, {"id": execution_id})
    assert signed_out.value.code == "UNAUTHENTICATED"


async def test_a_live_shared_run_streams_to_an_anonymous_viewer_gap_free(
    alice: GraphQLClient, anonymous: GraphQLClient
) -> None:
    script = "import sys\nfor i in range(40):\n    print(i)\nsys.stdout.flush()\ninput()\nprint('end')\n"
    execution_id = await submit(alice, script)
    await wait_for_status(alice, execution_id, "RUNNING")
    token = (await share(alice, execution_id))["token"]
    events: list[dict[str, Any]] = []

    async def watch() -> None:
        async for data in anonymous.subscribe(SHARED_EVENTS, {"token": token, "after": 0}):
            event = data["sharedExecutionEvents"]
            if event["__typename"] == "SharedStatusChange":
                events.append({"kind": "status", **event})
            else:
                events.extend(flatten(event))

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.5)
    await alice.execute('mutation($id: ID!) { sendInput(id: $id, data: "go\\n", eof: true) }', {"id": execution_id})
    await asyncio.wait_for(watcher, 20)
    assert_consecutive(events)
    assert lines(events) == [str(i) for i in range(40)] + ["end"]
    assert [e["status"] for e in events if e["kind"] == "status"] == ["STARTING", "RUNNING", "SUCCEEDED"]
    assert final(events)["stdout"].endswith("39\nend\n")


async def test_revoking_ends_a_live_viewers_stream(alice: GraphQLClient, anonymous: GraphQLClient) -> None:
    script = "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.2)\n"
    execution_id = await submit(alice, script)
    token = (await share(alice, execution_id))["token"]
    ticking = asyncio.Event()

    async def watch() -> None:
        async for data in anonymous.subscribe(SHARED_EVENTS, {"token": token}):
            if data["sharedExecutionEvents"]["__typename"] == "OutputChunk":
                ticking.set()

    watcher = asyncio.create_task(watch())
    try:
        await asyncio.wait_for(ticking.wait(), 15)
        await alice.execute(UNSHARE, {"id": execution_id})
        await asyncio.wait_for(watcher, 10)
        # The stream ended because of the revocation: the run is still going.
        assert (await execution(alice, execution_id))["status"] == "RUNNING"
    finally:
        await alice.execute("mutation($id: ID!) { cancelExecution(id: $id) { id } }", {"id": execution_id})
    with pytest.raises(GraphQLFailure) as refused:
        await asyncio.wait_for(collect_shared(anonymous, token), 5)
    assert refused.value.code == "NOT_FOUND"


async def collect_shared(client: GraphQLClient, token: str) -> None:
    async for _ in client.subscribe(SHARED_EVENTS, {"token": token}):
        pass


async def test_a_shared_runs_figures_download_with_the_token_only(
    alice: GraphQLClient, bob: GraphQLClient, anonymous: GraphQLClient
) -> None:
    execution_id = await finished_run(alice, HAND_MADE_FIGURE)
    other_id = await finished_run(alice, HAND_MADE_FIGURE)
    token = (await share(alice, execution_id))["token"]
    view = await shared(anonymous, token)
    assert view is not None
    [figure] = view["artifacts"]
    assert figure["url"] == f"/artifacts/{figure['id']}?share={token}"
    response = await anonymous.download(figure["url"])
    assert (response.status_code, response.content) == (200, PNG)
    assert response.headers["content-disposition"].startswith("attachment;")
    # Without the token, or with it for another run's figure, or as another user: nothing.
    assert (await anonymous.download(f"/artifacts/{figure['id']}")).status_code == 401
    assert (await bob.download(f"/artifacts/{figure['id']}")).status_code == 404
    [other] = (await alice.execute("query($id: ID!) { execution(id: $id) { artifacts { id } } }", {"id": other_id}))[
        "execution"
    ]["artifacts"]
    assert (await anonymous.download(f"/artifacts/{other['id']}?share={token}")).status_code == 404
    await alice.execute(UNSHARE, {"id": execution_id})
    assert (await anonymous.download(figure["url"])).status_code == 404
