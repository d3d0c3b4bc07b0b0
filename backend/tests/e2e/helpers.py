"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

from typing import Any

from tests.client import EVENTS, SUBMIT, GraphQLClient


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
    """An ExecutionEvent as a list of line dicts, or the StatusChange itself."""
    if event["__typename"] == "OutputChunk":
        return [{"kind": "line", **line} for line in event["lines"]]
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
    return [
        (e["seq"], e["stream"], e["text"]) if e["kind"] == "line" else (e["seq"], "STATUS", e["status"]) for e in events
    ]
