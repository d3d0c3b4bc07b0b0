"""Refusing operations too big to serve before any of them runs: size, tokens, depth, aliases and cost.

A query text longer than `max_query_chars` is not parsed; the parser stops at `max_tokens`. A parsed
document is then measured: how deep its fields nest, how many aliases it uses, and its cost, which
counts every field once per item of the lists around it (a list field holds the `first` of the
nearest field above it that takes one, as in `executions(first: 50) { edges { ... } }`, or else
`assumed_list_size` items; introspection lists their real average size). A field that returns output
(Execution.stdout, stderr) costs by the most it may return: one per OUTPUT_COST_BYTES of the largest output
limit, so a page of outputs costs what it may weigh. Only a document within all
three limits goes on to the standard validation, so a refusal costs one walk of a small document.

Strawberry's QueryDepthLimiter and MaxAliasesLimiter walk a fragment again at every spread, so twenty
fragments that each spread the next one twice (about 160 tokens) keep them busy for seconds (2^20
walks); this walk measures each fragment once and reuses its figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_abstract_type,
    is_list_type,
)
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef
from graphql.validation import ASTValidationRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from podrun.core.pages import MAX_PAGE
from podrun.settings import GraphQLSettings, Settings

# An output field costs one per this many bytes it may return.
OUTPUT_COST_BYTES = 16 * 1024
OUTPUT_FIELDS = (
    ("Execution", "stdout"),
    ("Execution", "stderr"),
    ("SharedExecution", "stdout"),
    ("SharedExecution", "stderr"),
)
# Distinct documents whose parse and validation results are kept (each is at most `max_tokens` long).
DOCUMENT_CACHE_SIZE = 256
_META_FIELDS = {"__typename": TypeNameMetaFieldDef, "__schema": SchemaMetaFieldDef, "__type": TypeMetaFieldDef}


@dataclass(frozen=True, slots=True)
class Budget:
    """The limits a document is measured against."""

    max_depth: int
    max_aliases: int
    max_cost: int
    assumed_list_size: int
    # (type, field, cost) of the fields that cost more than one.
    field_costs: tuple[tuple[str, str, int], ...] = ()

    @classmethod
    def from_settings(cls, settings: GraphQLSettings, field_costs: tuple[tuple[str, str, int], ...] = ()) -> Budget:
        """The budget the settings describe."""
        return cls(settings.max_depth, settings.max_aliases, settings.max_cost, settings.assumed_list_size, field_costs)


def output_field_costs(settings: Settings) -> tuple[tuple[str, str, int], ...]:
    """The cost of each output field: what it may return at the largest output limit, in OUTPUT_COST_BYTES."""
    cost = max(1, -(-settings.limits.maximum.output_bytes // OUTPUT_COST_BYTES))
    return tuple((type_name, field, cost) for type_name, field in OUTPUT_FIELDS)


@dataclass(frozen=True, slots=True)
class Figures:
    """What one selection asks for: its nesting depth, the aliases in it and its cost."""

    depth: int = 0
    aliases: int = 0
    cost: int = 0

    def beside(self, other: Figures) -> Figures:
        """The figures of two selections made side by side."""
        return Figures(max(self.depth, other.depth), self.aliases + other.aliases, self.cost + other.cost)


class _Walk:
    """Measures the operations of one document, each fragment once per page size it is spread under."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, budget: Budget) -> None:
        self.schema = schema
        self.assumed_list_size = budget.assumed_list_size
        self.field_costs = {(type_name, field): cost for type_name, field, cost in budget.field_costs}
        self.fragments = {
            definition.name.value: definition
            for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        self.introspection_sizes = _introspection_sizes(schema)
        self.measured: dict[tuple[str, int | None], Figures] = {}
        self.entered: set[str] = set()

    def operation(self, operation: OperationDefinitionNode) -> Figures:
        root = self.schema.get_root_type(operation.operation)
        return self.selections(operation.selection_set, root, None)

    def selections(self, selection_set: SelectionSetNode, parent: GraphQLNamedType | None, page: int | None) -> Figures:
        total = Figures()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total = total.beside(self.field(selection, parent, page))
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                total = total.beside(self.selections(selection.selection_set, inner, page))
            elif isinstance(selection, FragmentSpreadNode):
                total = total.beside(self.spread(selection.name.value, page))
        return total

    def spread(self, name: str, page: int | None) -> Figures:
        known = self.measured.get((name, page))
        if known is not None:
            return known
        fragment = self.fragments.get(name)
        # An unknown or cyclic spread adds nothing here: the standard validation refuses the document.
        if fragment is None or name in self.entered:
            return Figures()
        self.entered.add(name)
        figures = self.selections(
            fragment.selection_set, self.schema.get_type(fragment.type_condition.name.value), page
        )
        self.entered.discard(name)
        self.measured[(name, page)] = figures
        return figures

    def field(self, node: FieldNode, parent: GraphQLNamedType | None, page: int | None) -> Figures:
        definition = _definition(parent, node.name.value)
        own_page = _page_size(node, definition)
        if own_page is not None:
            page = own_page
        items = 1
        if definition is not None and is_list_type(get_nullable_type(definition.type)):
            # A list holds the page asked for above it, or an assumed number of items; lists below it hold their own.
            assumed = self.introspection_sizes.get(node.name.value, self.assumed_list_size)
            items = assumed if page is None or _is_introspection(parent) else page
            page = None
        inner = Figures()
        if node.selection_set is not None:
            child = get_named_type(definition.type) if definition is not None else None
            inner = self.selections(node.selection_set, child, page)
        own = self.field_costs.get((parent.name, node.name.value), 1) if parent is not None else 1
        return Figures(
            depth=1 + inner.depth, aliases=(1 if node.alias else 0) + inner.aliases, cost=own + items * inner.cost
        )


def _is_introspection(parent: GraphQLNamedType | None) -> bool:
    return parent is not None and parent.name.startswith("__")


@lru_cache(maxsize=4)
def _introspection_sizes(schema: GraphQLSchema) -> dict[str, int]:
    """How long each introspection list of this schema is on average (rounded up): its real sizes."""
    types = list(schema.type_map.values())
    objects = [t for t in types if isinstance(t, (GraphQLObjectType, GraphQLInterfaceType))]
    inputs = [t for t in types if isinstance(t, GraphQLInputObjectType)]
    enums = [t for t in types if isinstance(t, GraphQLEnumType)]
    arguments = [field.args for t in objects for field in t.fields.values()]
    arguments += [directive.args for directive in schema.directives]
    return {
        "types": len(types),
        "directives": len(schema.directives),
        "fields": _mean(len(t.fields) for t in objects),
        "inputFields": _mean(len(t.fields) for t in inputs),
        "args": _mean(len(args) for args in arguments),
        "enumValues": _mean(len(t.values) for t in enums),
        "interfaces": _mean(len(t.interfaces) for t in objects),
        "possibleTypes": _mean(len(schema.get_possible_types(t)) for t in types if is_abstract_type(t)),
        "locations": _mean(len(directive.locations) for directive in schema.directives),
    }


def _mean(sizes: Iterable[int]) -> int:
    counted = list(sizes)
    return -(-sum(counted) // len(counted)) if counted else 0


def _definition(parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
    meta = _META_FIELDS.get(name)
    if meta is not None:
        return meta
    if isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
        field: GraphQLField | None = parent.fields.get(name)
        return field
    return None


def _page_size(node: FieldNode, definition: GraphQLField | None) -> int | None:
    """The items a `first` argument asks for: its literal, the largest page for a variable, else its default."""
    for argument in node.arguments or ():
        if argument.name.value == "first":
            if isinstance(argument.value, IntValueNode):
                return max(int(argument.value.value), 0)
            if isinstance(argument.value, VariableNode):
                return MAX_PAGE
    declared = definition.args.get("first") if definition is not None else None
    default = declared.default_value if declared is not None else None
    return default if isinstance(default, int) else None


def refusals(schema: GraphQLSchema, document: DocumentNode, budget: Budget) -> list[GraphQLError]:
    """One error for each operation of `document` beyond the budget (with `extensions.limit` saying which)."""
    walk = _Walk(schema, document, budget)
    errors: list[GraphQLError] = []
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode):
            continue
        figures = walk.operation(operation)
        name = operation.name.value if operation.name else "anonymous"
        for limit, found, allowed, what in (
            ("DEPTH", figures.depth, budget.max_depth, "fields deep"),
            ("ALIASES", figures.aliases, budget.max_aliases, "aliases"),
            ("COST", figures.cost, budget.max_cost, "fields (counted per list item)"),
        ):
            if found > allowed:
                errors.append(
                    GraphQLError(
                        f"operation '{name}' asks for {_number(found)} {what}; at most {allowed} are allowed",
                        nodes=[operation],
                        extensions={"code": "BAD_USER_INPUT", "limit": limit},
                    )
                )
                break
    return errors


def _number(value: int) -> str:
    # A cost can be astronomically large (fragments spread twice at every level); do not print all its digits.
    return str(value) if value < 10**12 else "more than 10^12"


@lru_cache(maxsize=DOCUMENT_CACHE_SIZE)
def _validate(
    schema: GraphQLSchema, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...], budget: Budget
) -> list[GraphQLError]:
    return refusals(schema, document, budget) or validate_document(schema, document, rules)


class OperationLimits(SchemaExtension):
    """Caps tokens at parsing; measures a document against the budget before validating it (both cached).

    Takes the place of Strawberry's ValidationCache: one bounded cache holds each document's verdict.
    """

    def __init__(self, settings: GraphQLSettings, field_costs: tuple[tuple[str, str, int], ...] = ()) -> None:
        super().__init__()
        self.max_query_chars = settings.max_query_chars
        self.max_tokens = settings.max_tokens
        self.budget = Budget.from_settings(settings, field_costs)

    def on_operation(self) -> Iterator[None]:
        # Before parsing: graphql-core scans a whole query text again for each error location it reports.
        if len(self.execution_context.query or "") > self.max_query_chars:
            raise GraphQLError(
                f"the query is longer than {self.max_query_chars} characters; pass large values as variables",
                extensions={"code": "BAD_USER_INPUT", "limit": "SIZE"},
            )
        self.execution_context.parse_options["max_tokens"] = self.max_tokens
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None:
            context.pre_execution_errors = _validate(
                context.schema._schema, context.graphql_document, context.validation_rules, self.budget
            )
        yield
