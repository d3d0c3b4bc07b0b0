"""A lean GraphQL client for the benchmarks: mutations over one keep-alive HTTP connection pool, subscriptions
over graphql-transport-ws on raw WebSockets, every message parsed — what a real client does, and no more, so
the client costs as little as it can of the machine it shares with the server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.report import Failed

EVENTS = """
subscription($id: ID!) {
  executionEvents(id: $id) {
    ... on OutputChunk { lines { seq text } }
    ... on StatusChange { seq status }
  }
}
"""
SUBMIT = "mutation($input: SubmitExecutionInput!) { submitExecution(input: $input) { id } }"
SEND_INPUT = "mutation($id: ID!, $data: String!) { sendInput(id: $id, data: $data) }"
REGISTER = "mutation($e: String!, $p: String!) { register(email: $e, password: $p) { accessToken } }"
EXECUTION = "query($id: ID!) { execution(id: $id) { status limitExceeded createdAt startedAt finishedAt } }"
RUNTIMES = "query { runtimes { id default } }"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "ERROR"})


class Client:
    """One signed-in user of the benchmark's Podrun."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, token: str | None = None) -> None:
        self.http = http
        self.base_url = base_url
        self.ws_url = base_url.replace("http://", "ws://", 1) + "/graphql"
        self.token = token

    @classmethod
    async def register(cls, http: httpx.AsyncClient, base_url: str) -> Client:
        """A brand-new user, signed in."""
        anonymous = cls(http, base_url)
        email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
        data = await anonymous.execute(REGISTER, {"e": email, "p": "bench password 123"})
        return cls(http, base_url, data["register"]["accessToken"])

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """A query or mutation over HTTP; Failed on errors."""
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        response = await self.http.post(
            f"{self.base_url}/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        body = response.json()
        if body.get("errors") or response.status_code != 200:
            raise Failed(f"GraphQL errors: {body.get('errors')}")
        return body["data"]  # type: ignore[no-any-return]

    async def submit(self, script: str, **fields: Any) -> str:
        """Submit a script; the execution id."""
        data = await self.execute(SUBMIT, {"input": {"script": script, **fields}})
        return str(data["submitExecution"]["id"])

    async def send_input(self, execution_id: str, data: str) -> None:
        """Write `data` to a running script's stdin."""
        await self.execute(SEND_INPUT, {"id": execution_id, "data": data})

    async def execution(self, execution_id: str) -> dict[str, Any]:
        """The execution's status and timestamps."""
        data = await self.execute(EXECUTION, {"id": execution_id})
        return data["execution"]  # type: ignore[no-any-return]

    async def socket(self) -> Socket:
        """An open, acknowledged graphql-transport-ws connection."""
        return await Socket.open(self.ws_url, self.token)


class Socket:
    """One graphql-transport-ws connection carrying any number of subscriptions at once."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.ids = itertools.count(1)
        self.queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, token: str | None) -> Socket:
        """Connect, send connection_init with the token, wait for connection_ack."""
        connection = await connect(url, subprotocols=["graphql-transport-ws"], max_size=None)  # type: ignore[list-item]
        await connection.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
        ack = json.loads(await connection.recv())
        if ack.get("type") != "connection_ack":
            raise Failed(f"connection_init answered with {ack}")
        return cls(connection)

    async def events(self, execution_id: str) -> AsyncIterator[dict[str, Any]]:
        """Each event of `executionEvents(id)`, until the subscription completes; Failed on an error."""
        subscription = str(next(self.ids))
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.queues[subscription] = queue
        payload = {"query": EVENTS, "variables": {"id": execution_id}}
        await self.connection.send(json.dumps({"id": subscription, "type": "subscribe", "payload": payload}))
        try:
            while True:
                message = await queue.get()
                if message["type"] == "complete":
                    return
                if message["type"] != "next" or message["payload"].get("errors"):
                    raise Failed(f"subscription message: {message}")
                yield message["payload"]["data"]["executionEvents"]
        finally:
            del self.queues[subscription]

    async def _read(self) -> None:
        try:
            async for raw in self.connection:
                message = json.loads(raw)
                queue = self.queues.get(message.get("id", ""))
                if queue is not None:
                    queue.put_nowait(message)
        except ConnectionClosed:
            pass
        # Whoever still waits learns that the socket is gone.
        for queue in self.queues.values():
            queue.put_nowait({"type": "error", "payload": "the connection closed"})

    async def close(self) -> None:
        """Close the connection and stop reading."""
        self.reader.cancel()
        await self.connection.close()


def http_client() -> httpx.AsyncClient:
    """The benchmark's HTTP connection pool (kept alive across requests, as a browser does)."""
    return httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200, max_keepalive_connections=200))
