"""The GraphQL schema, assembled from the feature packages."""

from __future__ import annotations

import strawberry
from strawberry.extensions import ParserCache, ValidationCache

from podrun.graphql.accounts import AccountMutation, AccountQuery
from podrun.graphql.errors import ErrorCodes
from podrun.graphql.executions import ExecutionMutation, ExecutionQuery, ExecutionSubscription
from podrun.graphql.flat_objects import FlatObjectsExecutionContext


@strawberry.type
class Query(AccountQuery, ExecutionQuery):
    """Everything clients can read."""


@strawberry.type
class Mutation(AccountMutation, ExecutionMutation):
    """Everything clients can change."""


@strawberry.type
class Subscription(ExecutionSubscription):
    """Everything clients can watch."""


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    # Clients send the same few documents over and over: parse and validate each once (bounded LRU caches).
    extensions=[ErrorCodes, ParserCache, ValidationCache],
    execution_context_class=FlatObjectsExecutionContext,
)
