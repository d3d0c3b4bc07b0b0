"""Operations are measured before validation: depth, aliases and a cost that counts the items of lists."""

from __future__ import annotations

import pytest
from graphql import get_introspection_query, parse

from podrun.graphql.operation_limits import Budget, Figures, _Walk, output_field_costs, refusals
from podrun.graphql.schema import schema
from podrun.settings import GraphQLSettings, Settings

DEFAULTS = Budget.from_settings(GraphQLSettings(), output_field_costs(Settings.model_construct()))
NODE = "fragment Node on Execution { id status }"
# An output field at the default largest output limit (8 MiB): one per 16 KiB.
OUTPUT_COST = 512


def figures(document: str) -> Figures:
    parsed = parse(document)
    walk = _Walk(schema._schema, parsed, DEFAULTS)
    [operation] = [d for d in parsed.definitions if d.kind == "operation_definition"]
    return walk.operation(operation)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param("{ me { id } }", Figures(depth=2, aliases=0, cost=2), id="object"),
        # executions(first: 5): 1, edges: 1 + 5 items x (node: 1 + id + status), pageInfo: 1 + 1.
        pytest.param(
            "{ executions(first: 5) { edges { node { id status } } pageInfo { hasNextPage } } }",
            Figures(depth=4, aliases=0, cost=1 + (1 + 5 * 3) + 2),
            id="page-literal",
        ),
        pytest.param(
            "{ executions { edges { node { id status } } } }",
            Figures(depth=4, aliases=0, cost=1 + 1 + 20 * 3),
            id="page-default",
        ),
        pytest.param(
            "query($n: Int) { executions(first: $n) { edges { node { id status } } } }",
            Figures(depth=4, aliases=0, cost=1 + 1 + 100 * 3),
            id="page-variable-is-the-largest",
        ),
        pytest.param(
            "{ runtimes { id maxLimits { wallTimeMs } } }",
            Figures(depth=3, aliases=0, cost=1 + 10 * 3),
            id="assumed-list",
        ),
        pytest.param(
            NODE + "{ a: executions(first: 2) { edges { node { ...Node } } } b: me { c: id } }",
            Figures(depth=4, aliases=3, cost=(1 + 1 + 2 * 3) + 2),
            id="aliases-through-fragments",
        ),
        pytest.param(
            "fragment A on Query { ...B } fragment B on Query { ...A me { id } } { ...A }",
            Figures(depth=2, aliases=0, cost=2),
            id="cyclic-fragments-end",
        ),
        pytest.param("{ ...Missing me { id } }", Figures(depth=2, aliases=0, cost=2), id="unknown-fragment"),
        # Output fields cost what they may return, once per item of the page.
        pytest.param(
            "{ executions(first: 3) { edges { node { stdout stderr } } } }",
            Figures(depth=4, aliases=0, cost=1 + 1 + 3 * (1 + 2 * OUTPUT_COST)),
            id="output-by-size",
        ),
    ],
)
def test_figures(document: str, expected: Figures) -> None:
    assert figures(document) == expected


def test_a_page_of_outputs_too_heavy_to_serve_is_refused_before_it_runs() -> None:
    [error] = refusals(
        schema._schema, parse("{ executions(first: 100) { edges { node { stdout stderr } } } }"), DEFAULTS
    )
    assert error.extensions == {"code": "BAD_USER_INPUT", "limit": "COST"}


def test_a_fragment_spread_twice_at_every_level_is_measured_once_per_level() -> None:
    levels = 200
    fragments = "".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}\n" for i in range(levels))
    document = f"query {{ ...F0 }}\n{fragments}fragment F{levels} on Query {{ x: __typename }}"
    assert figures(document) == Figures(depth=1, aliases=2**levels, cost=2**levels)
    [error] = refusals(schema._schema, parse(document), DEFAULTS)
    assert error.extensions == {"code": "BAD_USER_INPUT", "limit": "ALIASES"}
    assert "more than 10^12 aliases" in error.message


def test_the_introspection_query_of_graphiql_and_codegen_is_within_the_defaults() -> None:
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )
    assert refusals(schema._schema, parse(query), DEFAULTS) == []


async def test_the_schema_serves_operations_within_the_limits_and_refuses_others() -> None:
    within = await schema.execute("{ a: __typename b: __typename }")
    assert within.errors is None
    assert within.data == {"a": "Query", "b": "Query"}
    beyond = await schema.execute("{ " + " ".join(f"a{i}: __typename" for i in range(DEFAULTS.max_aliases + 1)) + " }")
    assert beyond.errors is not None
    assert [error.extensions for error in beyond.errors] == [{"code": "BAD_USER_INPUT", "limit": "ALIASES"}]
    too_long = await schema.execute("{ " + "__typename " * GraphQLSettings().max_tokens + "}")
    assert too_long.errors is not None
    assert "tokens" in too_long.errors[0].message
