"""PodrunClient: the generated typed client plus what generated code cannot do.

Every operation of `operations/*.graphql` is a typed method inherited from the generated client. On top:
- an expired access token is renewed with the refresh token and the call repeated, over HTTP and WebSocket;
- `follow(id)` yields a run's events and, when the socket drops, resubscribes after the last `seq` it
  yielded, so the caller sees every event once, in order (the `executionEvents(id, afterSeq)` contract).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, cast

import httpx
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from podrun_client.generated import (
    ExecutionEvents,
    ExecutionEventsExecutionEventsArtifactCreated,
    ExecutionEventsExecutionEventsOutputChunk,
    ExecutionEventsExecutionEventsOutputChunkLines,
    ExecutionEventsExecutionEventsStatusChange,
    ExecutionStatus,
    GeneratedClient,
    GraphQLClientError,
    GraphQLClientGraphQLMultiError,
    Session,
)
from podrun_client.generated.async_base_client import HttpClient, Response

OutputChunk = ExecutionEventsExecutionEventsOutputChunk
OutputLine = ExecutionEventsExecutionEventsOutputChunkLines
StatusChange = ExecutionEventsExecutionEventsStatusChange
ArtifactCreated = ExecutionEventsExecutionEventsArtifactCreated
Event = OutputChunk | StatusChange | ArtifactCreated

TERMINAL = frozenset(
    {
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.FAILED,
        ExecutionStatus.TIMED_OUT,
        ExecutionStatus.CANCELLED,
        ExecutionStatus.ERROR,
    }
)

# Operations that start a session: they carry no access token and are never retried after a refresh.
_SESSION_OPERATIONS = frozenset({"Login", "Register", "RefreshToken"})
HTTP_OK = 200
HTTP_UNAUTHORIZED = 401
# graphql-transport-ws close code for a rejected connection_init (here: an expired or invalid token).
_FORBIDDEN = 4403


@dataclass
class Tokens:
    """The session's tokens: `access` goes with every request, `refresh` renews it when it expires."""

    access: str | None
    refresh: str | None


class NotSignedIn(Exception):
    """No session, or the server no longer accepts it (the refresh token expired): sign in again."""


class DownloadFailed(Exception):
    """The server refused a download (its error code, for example NOT_FOUND)."""


class ConnectionLost(Exception):
    """Following a run: the server could not be reached again within `reconnect_timeout` seconds."""


class PodrunClient(GeneratedClient):
    """A client of one Podrun server (`url` without `/graphql`); use it as an async context manager.

    Give it a refresh token (and optionally an access token) to resume a stored session, or call
    `sign_in`. `on_session` is called with every new session (sign-in and each refresh), for example
    to store the newest refresh token. A refresh token works once: clients (processes) that share a
    stored one pass `refresh_turn`, entered around each refresh, which waits for the others and yields
    the newest stored token (prun's is `credentials.refreshing`).
    """

    def __init__(
        self,
        url: str,
        *,
        access_token: str | None = None,
        refresh_token: str | None = None,
        on_session: Callable[[Session], None] | None = None,
        refresh_turn: Callable[[], AbstractAsyncContextManager[str | None]] | None = None,
        reconnect_timeout: float = 60.0,
        timeout: float = 30.0,
    ) -> None:
        base = url.rstrip("/")
        # Also used directly for downloads, which are no GraphQL. The User-Agent names the device in mySignIns.
        self.http = httpx.AsyncClient(
            auth=_Bearer(lambda: self.tokens.access),
            timeout=timeout,
            headers={"user-agent": f"podrun-client/{version('podrun-client')}"},
        )
        super().__init__(
            url=f"{base}/graphql",
            # The generated HttpClient protocol describes httpx.AsyncClient, spelling its keyword arguments loosely.
            http_client=cast(HttpClient, self.http),
            ws_url=f"{base.replace('http', 'ws', 1)}/graphql",
        )
        self.base_url = base
        self.tokens = Tokens(access=None, refresh=refresh_token)
        self._set_access_token(access_token)
        self.on_session = on_session
        self.refresh_turn = refresh_turn
        self.reconnect_timeout = reconnect_timeout
        self._refresh_lock = asyncio.Lock()

    async def sign_in(self, email: str, password: str) -> Session:
        """Sign in with email and password; later calls use (and renew) this session."""
        return self._start((await self.login(email=email, password=password)).session)

    async def sign_up(self, email: str, password: str) -> Session:
        """Create an account and sign in to it."""
        return self._start((await self.register(email=email, password=password)).session)

    async def refresh_session(self) -> Session:
        """Trade the refresh token for a new pair of tokens; NotSignedIn if there is none, or it expired or was
        revoked."""
        if self.refresh_turn is None:
            return await self._refresh()
        async with self.refresh_turn() as newest:
            if newest is not None:
                self.tokens.refresh = newest
            return await self._refresh()

    async def _refresh(self) -> Session:
        if self.tokens.refresh is None:
            raise NotSignedIn("not signed in")
        try:
            result = await self.refresh_token(refresh_token=self.tokens.refresh)
        except GraphQLClientGraphQLMultiError as error:
            if error_code(error) == "UNAUTHENTICATED":
                raise NotSignedIn(str(error)) from error
            raise
        return self._start(result.session)

    async def follow(self, execution_id: str, after_seq: int = 0) -> AsyncIterator[Event]:
        """Yield every event of a run after `after_seq`, live, ending with its terminal StatusChange.

        When the WebSocket drops (or the server closes it without finishing, or ends it as UNAVAILABLE),
        resubscribe after the last `seq` yielded: the caller sees every event exactly once, in order.
        ConnectionLost if no event arrives within `reconnect_timeout` seconds of a drop. When `after_seq`
        is at or past the terminal status of a finished run there is nothing to yield, and it ends at once.
        """
        last_seq = after_seq
        down_since: float | None = None
        delay = 0.1
        empty_completions = 0
        while True:
            final: StatusChange | None = None
            cause: Exception | None = None  # None: the server ended the subscription without an error
            delivered = False
            try:
                # An async generator (annotated as an iterator), closed at once if the caller stops early.
                subscription = cast(
                    "AsyncGenerator[ExecutionEvents, None]", self.execution_events(id=execution_id, after_seq=last_seq)
                )
                async with contextlib.aclosing(subscription) as events:
                    async for message in events:
                        event = message.execution_events
                        delivered, down_since, delay = True, None, 0.1
                        last_seq = event.lines[-1].seq if isinstance(event, OutputChunk) else event.seq
                        if isinstance(event, StatusChange) and event.status in TERMINAL:
                            # Held back until the server completes the subscription and the socket is closed,
                            # so that nothing is left open when the caller stops here.
                            final = event
                        else:
                            yield event
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as error:
                cause = error
            except GraphQLClientGraphQLMultiError as error:
                # UNAVAILABLE: the server lost its event store for a moment; resubscribing resumes exactly.
                if not all((e.extensions or {}).get("code") == "UNAVAILABLE" for e in error.errors):
                    raise
                cause = error
            except GraphQLClientError as error:  # the server did not acknowledge the connection in time
                cause = error
            if final is not None:
                yield final
                return
            # Ended cleanly without an event: the server completed a subscription with nothing after
            # last_seq (the run ended there), or closed the socket early; a second time means the former.
            empty_completions = empty_completions + 1 if cause is None and not delivered else 0
            if empty_completions == 2:
                return
            down_since = down_since if down_since is not None else time.monotonic()
            if time.monotonic() - down_since > self.reconnect_timeout:
                raise ConnectionLost(f"no connection to {self.base_url} for {self.reconnect_timeout:.0f}s") from cause
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def download(self, path: str) -> bytes:
        """The bytes at a path of the server (an artifact's `url`), as the signed-in user; DownloadFailed if refused."""
        token = await self._current_access_token()
        response = await self.http.get(f"{self.base_url}{path}")
        if response.status_code == HTTP_UNAUTHORIZED and self.tokens.refresh is not None:
            await self._refresh_unless_done(token)
            response = await self.http.get(f"{self.base_url}{path}")
        if response.status_code != HTTP_OK:
            try:
                body = response.json()
            except ValueError:
                body = {}
            code = body.get("code") if isinstance(body, dict) else None
            raise DownloadFailed(code if isinstance(code, str) else f"HTTP {response.status_code}")
        return bytes(response.content)

    async def execute(
        self,
        query: str,
        operation_name: str | None = None,
        variables: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Response:
        """Send an operation over HTTP; refresh the session and send it again if the token was refused."""
        if operation_name in _SESSION_OPERATIONS:
            return await super().execute(query, operation_name, variables, auth=None, **kwargs)
        token = await self._current_access_token()
        response = await super().execute(query, operation_name, variables, **kwargs)
        if self.tokens.refresh is not None and _unauthenticated(response):
            await self._refresh_unless_done(token)
            response = await super().execute(query, operation_name, variables, **kwargs)
        return response

    async def execute_ws(
        self,
        query: str,
        operation_name: str | None = None,
        variables: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[dict[str, Any]]:
        """Subscribe over WebSocket; refresh the session and connect again if `connection_init` was refused."""
        token = await self._current_access_token()
        try:
            async for data in super().execute_ws(query, operation_name, variables, **kwargs):
                yield data
            return
        except ConnectionClosed as closed:
            # A refused connection_init closes the socket before any data, so nothing is repeated below.
            if closed.rcvd is None or closed.rcvd.code != _FORBIDDEN or self.tokens.refresh is None:
                raise
        await self._refresh_unless_done(token)
        try:
            async for data in super().execute_ws(query, operation_name, variables, **kwargs):
                yield data
        except ConnectionClosed as closed:
            if closed.rcvd is not None and closed.rcvd.code == _FORBIDDEN:
                raise NotSignedIn("the server refused a freshly refreshed token") from closed
            raise

    async def _current_access_token(self) -> str | None:
        """The access token to send; a session resumed from a refresh token alone gets one first."""
        if self.tokens.access is None and self.tokens.refresh is not None:
            await self._refresh_unless_done(None)
        return self.tokens.access

    async def _refresh_unless_done(self, refused: str | None) -> None:
        """Refresh once for everyone who found `refused` wanting, however many calls found it at once."""
        async with self._refresh_lock:
            if self.tokens.access == refused:
                await self.refresh_session()

    def _start(self, session: Session) -> Session:
        self.tokens.refresh = session.refresh_token
        self._set_access_token(session.access_token)
        if self.on_session is not None:
            self.on_session(session)
        return session

    def _set_access_token(self, token: str | None) -> None:
        self.tokens.access = token
        self.ws_connection_init_payload = {"authorization": f"Bearer {token}"} if token else None


def error_code(error: GraphQLClientGraphQLMultiError) -> str | None:
    """The `extensions.code` of the first error (UNAUTHENTICATED, NOT_FOUND, CONFLICT, ...)."""
    extensions = error.errors[0].extensions if error.errors else None
    code = (extensions or {}).get("code")
    return code if isinstance(code, str) else None


def _unauthenticated(response: Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    errors = body.get("errors") if isinstance(body, dict) else None
    return any(
        isinstance(error, dict) and (error.get("extensions") or {}).get("code") == "UNAUTHENTICATED"
        for error in errors or []
    )


class _Bearer(httpx.Auth):
    """Sends the client's current access token, read at the moment each request goes out."""

    def __init__(self, token: Callable[[], str | None]) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._token()
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request
