"""Generated operations from the committed schema against the running API, signed in: no 5xx, no unmasked error.

schemathesis (GraphQL mode) builds queries and mutations with arbitrary arguments and selections; every
answer must be a coded GraphQL response. Bounded: a few examples per root field.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import graphql
import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation.case import Case
from schemathesis.graphql import nodes

SCHEMA_FILE = Path(__file__).resolve().parents[3] / "schema" / "schema.graphql"
CODES = {"UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "BAD_USER_INPUT", "RATE_LIMITED", "CONFLICT", "UNAVAILABLE"}
EXAMPLES_PER_FIELD = 8
NAMES = st.from_regex(r"[_A-Za-z][_0-9A-Za-z]{0,10}", fullmatch=True)


def _object(fields: dict[str, graphql.ValueNode]) -> graphql.ValueNode:
    return nodes.Object([graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v) for k, v in fields.items()])


# Any JSON value (runTool's values, a form field's default), written inline as GraphQL literals.
JSON_VALUES = st.recursive(
    st.text(st.characters(codec="utf-8"), max_size=20).map(nodes.String)
    | st.integers(-(10**6), 10**6).map(nodes.Int)
    | st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float)
    | st.booleans().map(nodes.Boolean),
    lambda children: (
        st.lists(children, max_size=4).map(nodes.List) | st.dictionaries(NAMES, children, max_size=4).map(_object)
    ),
    max_leaves=8,
)
schemathesis.graphql.scalar("JSON", JSON_VALUES)
REGISTER = "mutation($e: String!, $p: String!) { register(email: $e, password: $p) { accessToken } }"


def test_generated_operations_get_coded_answers(guarded: str) -> None:
    registered = httpx.post(
        f"{guarded}/graphql",
        json={
            "query": REGISTER,
            "variables": {"e": f"fuzz-{uuid.uuid4().hex[:12]}@example.com", "p": "correct horse battery"},
        },
        headers={"x-forwarded-for": "198.19.255.1"},
    ).json()
    headers = {"authorization": f"Bearer {registered['data']['register']['accessToken']}"}
    schema = schemathesis.graphql.from_path(SCHEMA_FILE)
    answers: list[dict[str, Any]] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_FIELD, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def call(case: Case) -> None:
            response = case.call(base_url=f"{guarded}/graphql", headers=headers)
            assert response.status_code < 500, (case.body, response.text)
            body = response.json()
            for error in body.get("errors") or []:
                code = (error.get("extensions") or {}).get("code")
                assert code in CODES, (case.body, error)
            answers.append(body)

        call()
    assert len(answers) >= EXAMPLES_PER_FIELD
