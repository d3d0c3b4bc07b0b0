"""The one place where errors become `extensions.code` for clients.

Domain errors (podrun.core.errors) already carry their code. Errors of the request itself (syntax,
validation, variables) become BAD_USER_INPUT. An outage of PostgreSQL or Redis becomes UNAVAILABLE
(with retryAfterMs). Everything else is logged in full and masked as INTERNAL.
"""

from __future__ import annotations

import structlog
from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from podrun.core.errors import PodrunError, Unavailable
from podrun.observability import metrics
from podrun.outages import unavailable_service

log = structlog.get_logger(__name__)

INTERNAL_MESSAGE = "Internal server error"
UNAVAILABLE_MESSAGE = "the {service} is unavailable for the moment; try again shortly"


class ErrorCodes(MaskErrors):
    """Give every error a contract code; mask and log unexpected ones."""

    def __init__(self) -> None:
        super().__init__(error_message=INTERNAL_MESSAGE)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        coded = [self._with_code(error) for error in errors]
        metrics.refused(str((error.extensions or {}).get("code", "INTERNAL")) for error in coded)
        return coded

    def _with_code(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if isinstance(original, PodrunError) or (error.extensions or {}).get("code"):
            return error
        # No original error, or graphql-core's own (variable coercion): the request itself is wrong.
        if original is None or isinstance(original, GraphQLError):
            return GraphQLError(
                error.message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                extensions={"code": "BAD_USER_INPUT"},
            )
        service = unavailable_service(original)
        if service is not None:
            # An outage, not a bug: say so (without the details) and when to try again.
            log.warning("request failed: service unavailable", service=service, path=error.path)
            unavailable = Unavailable(UNAVAILABLE_MESSAGE.format(service=service))
            return GraphQLError(
                unavailable.message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                extensions=unavailable.extensions,
            )
        log.error("unexpected error in a resolver", path=error.path, exc_info=original)
        return GraphQLError(
            INTERNAL_MESSAGE,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "INTERNAL"},
        )
