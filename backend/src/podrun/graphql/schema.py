"""The GraphQL schema, assembled from the feature packages."""

from __future__ import annotations

import strawberry

from podrun.accounts.graphql import AccountMutation, AccountQuery
from podrun.executions.graphql import ExecutionMutation, ExecutionQuery, ExecutionSubscription
from podrun.graphql.errors import ErrorCodes


@strawberry.type
class Query(AccountQuery, ExecutionQuery):
    """Everything clients can read."""


@strawberry.type
class Mutation(AccountMutation, ExecutionMutation):
    """Everything clients can change."""


@strawberry.type
class Subscription(ExecutionSubscription):
    """Everything clients can watch."""


schema = strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription, extensions=[ErrorCodes])
