"""Helpers of the hostile-client tests, which run against the `guarded` API (tests/e2e/conftest.py).

Each test gives its clients addresses of their own (X-Forwarded-For, which the `guarded` API trusts
from 127.0.0.1, its stand-in proxy), so per-client limits never leak from one test into another.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import websockets

from tests.client import GraphQLClient

_addresses = itertools.count(1)


def fresh_address() -> str:
    """A client address no other test uses (documentation range 198.18.0.0/15)."""
    number = next(_addresses)
    return f"198.18.{number // 256}.{number % 256}"


def client(base_url: str) -> GraphQLClient:
    """An anonymous client at an address of its own."""
    return GraphQLClient(base_url, address=fresh_address())


class RawSocket:
    """A graphql-transport-ws socket driven message by message, as a hostile client would."""

    def __init__(self, connection: websockets.ClientConnection) -> None:
        self.connection = connection

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def receive(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await self.connection.recv())
        return message

    async def closed_with(self) -> int | None:
        """Read until the server closes the socket; its close code."""
        try:
            while True:
                await self.connection.recv()
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None


def raw_socket(user: GraphQLClient, max_size: int | None = None) -> websockets.connect:
    """Connect (use with `async with`); `max_size` is what this client accepts, not what it sends."""
    return websockets.connect(
        user.ws_url,
        subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
        additional_headers={"x-forwarded-for": user.address} if user.address else None,
        max_size=max_size,
        compression=None,
    )
