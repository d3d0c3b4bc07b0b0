"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets

from tests.client import EVENTS, SUBMIT, GraphQLClient

# Operations several end-to-end test files send.
REFRESH = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }"
SET_ROLE = "mutation($id: ID!, $role: Role!) { setUserRole(id: $id, role: $role) { id role } }"


async def submit(client: GraphQLClient, script: str, **fields: Any) -> str:
    """Submit a script and return the execution id."""
    data = await client.execute(SUBMIT, {"input": {"script": script, **fields}})
    return str(data["submitExecution"]["id"])


async def collect(client: GraphQLClient, execution_id: str, after: int = 0) -> list[dict[str, Any]]:
    """Every event of a subscription until it completes, flattened: one dict per line or status change."""
    events: list[dict[str, Any]] = []
    async for data in client.subscribe(EVENTS, {"id": execution_id, "after": after}):
        events.extend(flatten(data["executionEvents"]))
    return events


def flatten(event: dict[str, Any]) -> list[dict[str, Any]]:
    """An ExecutionEvent as a list of line dicts, or the ArtifactCreated or StatusChange itself."""
    if event["__typename"] == "OutputChunk":
        return [{"kind": "line", **line} for line in event["lines"]]
    if event["__typename"] == "ArtifactCreated":
        return [{"kind": "artifact", **event}]
    return [{"kind": "status", **event}]


def lines(events: list[dict[str, Any]], stream: str = "STDOUT") -> list[str]:
    return [event["text"] for event in events if event["kind"] == "line" and event["stream"] == stream]


def final(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The execution as the terminal StatusChange reported it."""
    assert events[-1]["kind"] == "status", events[-1]
    return events[-1]["execution"]  # type: ignore[no-any-return]


def assert_consecutive(events: list[dict[str, Any]], start: int = 1) -> None:
    """seq runs start, start+1, ... without gaps or repeats."""
    assert [event["seq"] for event in events] == list(range(start, start + len(events)))


def summary(events: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    """(seq, stream or "STATUS", text or status) per event: what must match between two deliveries."""
    return [_summary(event) for event in events]


def _summary(event: dict[str, Any]) -> tuple[int, str, str]:
    if event["kind"] == "line":
        return (event["seq"], event["stream"], event["text"])
    if event["kind"] == "artifact":
        return (event["seq"], "ARTIFACT", event["artifact"]["name"])
    return (event["seq"], "STATUS", event["status"])


EXECUTION = """
query($id: ID!) {
  execution(id: $id) {
    id status exitCode signal limitExceeded error outputTruncated stdout stderr startedAt finishedAt
  }
}
"""


async def execution(client: GraphQLClient, execution_id: str) -> dict[str, Any]:
    """The execution as the `execution` query returns it."""
    data = await client.execute(EXECUTION, {"id": execution_id})
    return data["execution"]  # type: ignore[no-any-return]


async def wait_for_status(
    client: GraphQLClient, execution_id: str, *statuses: str, timeout: float = 15
) -> dict[str, Any]:
    """Poll the execution until its status is one of `statuses`; fail after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        current = await execution(client, execution_id)
        if current["status"] in statuses:
            return current
        assert asyncio.get_running_loop().time() < deadline, f"still {current['status']}, wanted {statuses}"
        await asyncio.sleep(0.05)


async def connection_init(client: GraphQLClient, payload: dict[str, Any]) -> tuple[str | None, int | None]:
    """Send connection_init with `payload`; the server's first message type, or the close code."""
    async with websockets.connect(client.ws_url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        try:
            message = json.loads(await socket.recv())
        except websockets.ConnectionClosed as closed:
            return None, closed.rcvd.code if closed.rcvd else None
        return message["type"], None
