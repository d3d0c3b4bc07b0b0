"""The one GraphQL test client: HTTP for queries and mutations, WebSocket (graphql-transport-ws) for subscriptions.

Built on gql, a real GraphQL client, so tests speak the protocol exactly as any client would.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport


class GraphQLFailure(Exception):
    """A GraphQL response with errors; `codes` lists their extensions.code in order."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors
        self.codes = [(error.get("extensions") or {}).get("code") for error in errors]
        self.code = self.codes[0] if self.codes else None
        self.message = errors[0].get("message", "") if errors else ""


class GraphQLClient:
    """Talks to one Podrun server, optionally signed in with an access token."""

    def __init__(self, base_url: str, token: str | None = None, address: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        # Sent as X-Forwarded-For: the address per-client limits see at an API that trusts 127.0.0.1 as its proxy.
        self.address = address
        self.refresh_token: str | None = None
        self.user_id: str | None = None

    @property
    def http_url(self) -> str:
        return f"{self.base_url}/graphql"

    @property
    def ws_url(self) -> str:
        return self.http_url.replace("http://", "ws://", 1)

    async def download(self, url: str) -> httpx.Response:
        """GET a path of the API (an artifact's url) with this client's token."""
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        async with httpx.AsyncClient(timeout=30) as http:
            return await http.get(f"{self.base_url}{url}", headers=headers)

    def with_token(self, token: str | None) -> GraphQLClient:
        return GraphQLClient(self.base_url, token, self.address)

    @property
    def headers(self) -> dict[str, str]:
        """The HTTP (and WebSocket upgrade) headers of this client."""
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        return headers | ({"x-forwarded-for": self.address} if self.address else {})

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run a query or mutation over HTTP; raise GraphQLFailure if the response has errors."""
        headers = self.headers
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(
                self.http_url, json={"query": query, "variables": variables or {}}, headers=headers
            )
        body = response.json()
        if body.get("errors"):
            raise GraphQLFailure(body["errors"])
        assert response.status_code == 200, body
        return body["data"]  # type: ignore[no-any-return]

    def transport(self, init_payload: dict[str, Any] | None = None) -> WebsocketsTransport:
        payload = (
            init_payload
            if init_payload is not None
            else ({"authorization": f"Bearer {self.token}"} if self.token else {})
        )
        return WebsocketsTransport(
            url=self.ws_url,
            init_payload=payload,
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            headers={"x-forwarded-for": self.address} if self.address else None,
            connect_timeout=10,
            close_timeout=2,
        )

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> AsyncIterator[dict[str, Any]]:
        """Yield each `data` of a subscription over WebSocket; raise GraphQLFailure on an error."""
        async with Client(transport=self.transport()) as session:
            try:
                async for data in session.subscribe(GraphQLRequest(query, variable_values=variables)):
                    yield data
            except TransportQueryError as error:
                raise GraphQLFailure(error.errors or [{"message": str(error)}]) from error

    async def login(self, email: str, password: str) -> GraphQLClient:
        """A client signed in with these credentials."""
        data = await self.execute(
            "mutation($e:String!,$p:String!){login(email:$e,password:$p){accessToken refreshToken user{id}}}",
            {"e": email, "p": password},
        )
        signed_in = self.with_token(data["login"]["accessToken"])
        signed_in.refresh_token = data["login"]["refreshToken"]
        signed_in.user_id = data["login"]["user"]["id"]
        return signed_in

    async def register(self, email: str | None = None, password: str = "correct horse battery") -> GraphQLClient:
        """A client signed in as a brand-new user."""
        email = email or f"user-{uuid.uuid4().hex[:12]}@example.com"
        data = await self.execute(
            "mutation($e:String!,$p:String!){register(email:$e,password:$p){accessToken refreshToken user{id}}}",
            {"e": email, "p": password},
        )
        signed_in = self.with_token(data["register"]["accessToken"])
        signed_in.refresh_token = data["register"]["refreshToken"]
        signed_in.user_id = data["register"]["user"]["id"]
        return signed_in


EVENTS = """
subscription($id: ID!, $after: Int) {
  executionEvents(id: $id, afterSeq: $after) {
    __typename
    ... on OutputChunk { lines { seq stream text partial at } }
    ... on ArtifactCreated { seq artifact { id name mediaType sizeBytes url createdAt } }
    ... on StatusChange { seq status execution { id status exitCode signal limitExceeded error outputTruncated
                                                  stdout stderr usage { wallTimeMs cpuTimeMs peakMemoryKiB } } }
  }
}
"""

SUBMIT = """
mutation($input: SubmitExecutionInput!) {
  submitExecution(input: $input) {
    id status runtime { id } limits { wallTimeMs cpuTimeMs memoryMiB outputBytes processes }
  }
}
"""
