"""The GraphQL schema, assembled from the feature packages."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import partial

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection, ParserCache, SchemaExtension
from strawberry.extensions.tracing import OpenTelemetryExtension
from strawberry.types import ExecutionContext

from podrun.graphql.accounts import AccountMutation, AccountQuery
from podrun.graphql.admin import AdminMutation, AdminQuery
from podrun.graphql.errors import ErrorCodes
from podrun.graphql.executions import ExecutionMutation, ExecutionQuery, ExecutionSubscription
from podrun.graphql.flat_objects import FlatObjectsExecutionContext
from podrun.graphql.kernels import KernelMutation, KernelQuery
from podrun.graphql.operation_limits import DOCUMENT_CACHE_SIZE, OperationLimits, output_field_costs
from podrun.graphql.operations import OperationsQuery
from podrun.graphql.output_budget import OutputBudget
from podrun.graphql.quota import QuotaQuery
from podrun.graphql.scripts import ScriptMutation, ScriptQuery
from podrun.graphql.shares import ShareMutation, ShareQuery, ShareSubscription
from podrun.graphql.sign_ins import SignInMutation, SignInQuery
from podrun.graphql.tools import ToolMutation, ToolQuery
from podrun.observability import tracing
from podrun.settings import Settings


@strawberry.type
class Query(
    AccountQuery,
    SignInQuery,
    ExecutionQuery,
    KernelQuery,
    ShareQuery,
    ScriptQuery,
    ToolQuery,
    QuotaQuery,
    AdminQuery,
    OperationsQuery,
):
    """Everything clients can read."""


@strawberry.type
class Mutation(
    AccountMutation,
    SignInMutation,
    ExecutionMutation,
    KernelMutation,
    ShareMutation,
    ScriptMutation,
    ToolMutation,
    AdminMutation,
):
    """Everything clients can change."""


@strawberry.type
class Subscription(ExecutionSubscription, ShareSubscription):
    """Everything clients can watch."""


class ParseOnce(ParserCache):
    """Strawberry's parser cache, except that a document that does not parse is left to Strawberry,
    which reports it as any other request error (with its code); the cache would raise it unreported."""

    def __init__(self) -> None:
        super().__init__(maxsize=DOCUMENT_CACHE_SIZE)

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        with contextlib.suppress(GraphQLError):
            context.graphql_document = self.cached_parse_document(context.query, **context.parse_options)
        yield


class PodrunSchema(strawberry.Schema):
    """Strawberry's schema, minus its error log: each error is logged where it gets its code (graphql/errors.py),
    unexpected ones in full. Strawberry's would print every refused request with its source around the error,
    so that one 1 MB query wrote over a megabyte to the log."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Log nothing more: a client's mistakes are answered, not logged."""


def build_schema(settings: Settings) -> strawberry.Schema:
    """The schema with the limits of `settings` (and introspection only where they allow it)."""
    # Clients send the same few documents over and over: parse and validate each once (bounded LRU caches).
    extensions: list[Callable[[], SchemaExtension]] = [
        ErrorCodes,
        ParseOnce,
        partial(OperationLimits, settings.graphql, output_field_costs(settings)),
        partial(OutputBudget, settings.output_budget_bytes),
    ]
    if not settings.introspection_enabled:
        extensions.append(DisableIntrospection)
    if tracing.enabled():
        # No resolver argument becomes a span attribute: they hold scripts, passwords and tokens.
        extensions.append(partial(OpenTelemetryExtension, arg_filter=lambda _arguments, _info: {}))
    return PodrunSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        execution_context_class=FlatObjectsExecutionContext,
    )


schema = build_schema(Settings.model_construct())
"""The schema with the default settings, read from no environment: what `./taskw schema` exports."""
