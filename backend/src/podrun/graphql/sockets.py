"""The limits of one WebSocket: operations in progress at once, and operations started per second.

A refused operation gets the protocol's `error` message with RATE_LIMITED and `retryAfterMs`; the socket
and its other operations carry on. Protocol violations (an operation before `connection_init`, an id
in use) keep Strawberry's answers: the socket is closed with 4401 or 4409.
"""

from __future__ import annotations

import math
import time
from typing import Any

from graphql import GraphQLError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage

from podrun.core.errors import RateLimited
from podrun.graphql.context import Context
from podrun.settings import GraphQLSettings

# A client at the cap of operations in progress may retry once one of them has ended.
RETRY_AT_CAP_MS = 1000


class OperationRate:
    """A token bucket: `per_second` operations a second, in bursts of as many."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self.tokens = float(per_second)
        self.updated = time.monotonic()

    def take(self) -> int:
        """0 when an operation may start now (and counts it); otherwise the milliseconds until one may."""
        now = time.monotonic()
        self.tokens = min(float(self.per_second), self.tokens + (now - self.updated) * self.per_second)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0
        return max(1, math.ceil((1 - self.tokens) / self.per_second * 1000))


class LimitedSocket(BaseGraphQLTransportWSHandler[Context, None]):
    """Strawberry's graphql-transport-ws handler, with coded refusals over the socket's limits."""

    settings = GraphQLSettings()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rate = OperationRate(self.settings.operations_per_socket_per_second)

    @classmethod
    def with_settings(cls, settings: GraphQLSettings) -> type[LimitedSocket]:
        """The handler class for sockets under these settings."""
        return type(cls.__name__, (cls,), {"settings": settings})

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        """Start the operation unless the socket is at its cap or over its rate."""
        if self.connection_acknowledged and message["id"] not in self.operations:
            cap = self.settings.subscriptions_per_socket
            if len(self.operations) >= cap:
                await self._refuse(
                    message, RateLimited(f"at most {cap} operations at once on one socket", RETRY_AT_CAP_MS)
                )
                return
            wait_ms = self.rate.take()
            if wait_ms:
                per_second = self.settings.operations_per_socket_per_second
                await self._refuse(
                    message, RateLimited(f"at most {per_second} operations a second on one socket", wait_ms)
                )
                return
        await super().handle_subscribe(message)

    async def _refuse(self, message: SubscribeMessage, error: RateLimited) -> None:
        refusal = GraphQLError(error.message, extensions=error.extensions)
        await self.send_message({"id": message["id"], "type": "error", "payload": [refusal.formatted]})
