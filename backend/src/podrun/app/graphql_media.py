"""The GraphQL-over-HTTP media types at /graphql: `application/json` as always, `application/graphql-response+json`
with the spec's status codes.

A client that prefers `application/graphql-response+json` gets that media type and a 400 without a `data` entry for a
request error (bad JSON, no query, a document that does not parse or validate, variables that do not coerce); a result
that was executed stays 200. `application/json` (and `*/*` or no Accept) keeps Strawberry's answers unchanged (200 for
every GraphQL error), which existing clients rely on.

Both, and every WebSocket message, are encoded by msgspec (`encode_json`).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from cross_web import HTTPException
from graphql import ExecutionResult
from litestar import Request, Response
from litestar.enums import MediaType
from strawberry.http import GraphQLHTTPResponse

GRAPHQL_RESPONSE = "application/graphql-response+json"
# Listed first, `application/json` is what `*/*` and an absent Accept get.
_OFFERED = [MediaType.JSON.value, GRAPHQL_RESPONSE]
_REQUEST_ERROR = "podrun_graphql_request_error"
_ENCODER = msgspec.json.Encoder()


def encode_json(data: object) -> str:
    """The JSON Strawberry's `json.dumps` gives (compact), with non-ASCII characters as UTF-8 rather than escapes, at
    a tenth of the CPU: a subscription's chunks of lines are most of what the API encodes."""
    try:
        return _ENCODER.encode(data).decode()
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8: the stdlib escapes it
        return json.dumps(data, separators=(",", ":"))


def wants_graphql_response(request: Request[Any, Any, Any]) -> bool:
    """Whether the client prefers `application/graphql-response+json` over `application/json`."""
    return request.accept.best_match(_OFFERED) == GRAPHQL_RESPONSE


def is_request_error(result: ExecutionResult) -> bool:
    """A result that never reached execution: no data and no error tied to a field (parse, validation, coercion)."""
    errors = result.errors or []
    return result.data is None and bool(errors) and all(error.path is None for error in errors)


class GraphQLResponseMedia:
    """Mixed into the Strawberry Litestar controller (before it) to answer `application/graphql-response+json`."""

    async def execute_request(self, request: Request[Any, Any, Any], context: Any, root_value: Any) -> Response[Any]:
        if not wants_graphql_response(request):
            return await super().execute_request(request, context, root_value)  # type: ignore[misc,no-any-return]
        try:
            response: Response[Any] = await self.run(request, context=context, root_value=root_value)  # type: ignore[attr-defined]
        except HTTPException as error:
            return Response(
                {"errors": [{"message": error.reason}]}, status_code=error.status_code, media_type=GRAPHQL_RESPONSE
            )
        # Only the JSON result changes; the IDE page and streamed responses keep their own media types.
        if response.media_type == MediaType.JSON:
            response.media_type = GRAPHQL_RESPONSE
            if request.state.get(_REQUEST_ERROR, False):
                response.status_code = 400
        return response

    async def process_result(self, request: Request[Any, Any, Any], result: ExecutionResult) -> GraphQLHTTPResponse:
        processed: GraphQLHTTPResponse = await super().process_result(request, result)  # type: ignore[misc]
        if wants_graphql_response(request) and is_request_error(result):
            # The spec: a request error's response has no `data` entry at all (not `"data": null`).
            request.state[_REQUEST_ERROR] = True
            processed.pop("data", None)
        return processed
