"""The GraphQL schema, assembled from the feature packages."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache

from podrun.graphql.accounts import AccountMutation, AccountQuery
from podrun.graphql.admin import AdminMutation, AdminQuery
from podrun.graphql.errors import ErrorCodes
from podrun.graphql.executions import ExecutionMutation, ExecutionQuery, ExecutionSubscription
from podrun.graphql.flat_objects import FlatObjectsExecutionContext
from podrun.graphql.quota import QuotaQuery
from podrun.graphql.scripts import ScriptMutation, ScriptQuery


@strawberry.type
class Query(AccountQuery, ExecutionQuery, ScriptQuery, QuotaQuery, AdminQuery):
    """Everything clients can read."""


@strawberry.type
class Mutation(AccountMutation, ExecutionMutation, ScriptMutation, AdminMutation):
    """Everything clients can change."""


@strawberry.type
class Subscription(ExecutionSubscription):
    """Everything clients can watch."""


class ParseOnce(ParserCache):
    """Strawberry's parser cache, except that a document that does not parse is left to Strawberry,
    which reports it as any other request error (with its code); the cache would raise it unreported."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        with contextlib.suppress(GraphQLError):
            context.graphql_document = self.cached_parse_document(context.query, **context.parse_options)
        yield


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    # Clients send the same few documents over and over: parse and validate each once (bounded LRU caches).
    extensions=[ErrorCodes, ParseOnce, ValidationCache],
    execution_context_class=FlatObjectsExecutionContext,
)
