"""A faster completion of the objects a run's output is made of, with the same result.

A replay or a busy fan-out completes hundreds of thousands of `OutputLine` objects; the standard
executor resolves each field of each of them through the whole resolver machinery (about 70 µs
a line). Objects of the types in `FLAT_TYPES` whose selected fields are all plain attributes of a
leaf type (no resolver, argument, permission or extension) are completed here instead, straight
into a dictionary with each leaf type's own `serialize`. Anything else, and any object whose value
could be an error (a null in a non-null field), takes the standard path. A subscription's lines come as
`Lines` (kept in their stored batches): they are completed column by column, each distinct value of a
column serialized once, with no object per line.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import repeat
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLScalarType,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from podrun.streams.events import Lines

FLAT_TYPES = frozenset({"OutputLine"})

# (response key, attribute or None for __typename, serialize, non-null, the type `serialize` returns unchanged)
Plan = list[tuple[str, str | None, Callable[[Any], Any], bool, type | None]]
# The leaf types whose `serialize` returns a value of exactly this type unchanged.
_EXACT: dict[str, type] = {"Int": int, "String": str, "Boolean": bool}


class FlatObjectsExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """The standard executor, with flat objects of `FLAT_TYPES` completed in one step."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans: dict[tuple[GraphQLObjectType, int], tuple[FieldDetailsList, Plan | None]] = {}

    def complete_list_value(  # noqa: PLR0917 - graphql-core's signature
        self,
        return_type: GraphQLList[Any],
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        """A list of flat objects completed item by item without the per-item machinery."""
        item_type = return_type.of_type.of_type if isinstance(return_type.of_type, GraphQLNonNull) else None
        if isinstance(item_type, GraphQLObjectType) and item_type.name in FLAT_TYPES:
            plan = self._plan(item_type, field_details_list) if isinstance(result, list | Lines) else None
            if plan is not None and isinstance(result, Lines):
                by_columns = _complete_columns(plan, item_type, result)
                if by_columns is not None:
                    return by_columns
            elif plan is not None:
                completed = [_complete(plan, item_type.name, item) for item in result]
                if all(item is not None for item in completed):
                    return completed
        return super().complete_list_value(return_type, field_details_list, info, path, result, position_context)

    def complete_object_value(  # noqa: PLR0917 - graphql-core's signature
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        """A flat object's selected leaves as a dictionary; everything else as the standard executor does."""
        plan = self._plan(return_type, field_details_list) if return_type.name in FLAT_TYPES else None
        completed = _complete(plan, return_type.name, result) if plan is not None else None
        if completed is not None:
            return completed
        return super().complete_object_value(return_type, field_details_list, info, path, result, position_context)

    def _plan(self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList) -> Plan | None:
        # Memoized like graphql-core's collect_subfields: one plan per selection, kept alive with it.
        key = (return_type, id(field_details_list))
        cached = self._plans.get(key)
        if cached is None:
            cached = (field_details_list, _flat_plan(self, return_type, field_details_list))
            self._plans[key] = cached
        return cached[1]


def _complete(plan: Plan, type_name: str, result: Any) -> dict[str, Any] | None:
    """The object's selected leaves, or None when one of them is an error (a null in a non-null field)."""
    completed: dict[str, Any] = {}
    for key, attribute, serialize, non_null, _exact in plan:
        value = type_name if attribute is None else getattr(result, attribute)
        if value is None:
            if non_null:
                return None  # the standard path reports the error
            completed[key] = None
        else:
            completed[key] = serialize(value)
    return completed


def _complete_columns(plan: Plan, item_type: GraphQLObjectType, lines: Lines) -> list[dict[str, Any]] | None:
    """What `_complete` gives for each line, built a column at a time; None when a column holds an error (a null in
    a non-null field) or is not an attribute of the lines."""
    columns: list[Any] = []
    for _key, attribute, serialize, non_null, exact in plan:
        if attribute is None:
            columns.append(repeat(item_type.name, len(lines)))
            continue
        values = lines.column(attribute)
        if values is None:
            return None
        if exact is not None and set(map(type, values)) == {exact}:
            columns.append(values)  # what serialize would return, value for value
            continue
        # The other columns (stream, partial, at) hold a value or two: each is serialized once.
        serialized = {value: None if value is None else serialize(value) for value in dict.fromkeys(values)}
        if non_null and None in serialized:
            return None
        columns.append(map(serialized.__getitem__, values))
    keys = [key for key, *_ in plan]
    return list(map(dict, map(zip, repeat(keys), zip(*columns, strict=True))))


def _flat_plan(
    context: FlatObjectsExecutionContext, return_type: GraphQLObjectType, field_details_list: FieldDetailsList
) -> Plan | None:
    grouped_field_set, new_defer_usages, _ = context.collect_subfields(return_type, field_details_list)
    if new_defer_usages:
        return None
    plan: Plan = []
    for response_key, details in grouped_field_set.items():
        node = details[0].node
        name = node.name.value
        if name == "__typename":
            plan.append((response_key, None, str, True, str))
            continue
        field = return_type.fields.get(name)
        if field is None or node.arguments or any(detail.defer_usage for detail in details):
            return None
        definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
        if not isinstance(definition, StrawberryField) or definition.base_resolver is not None:
            return None
        if definition.permission_classes or definition.extensions:
            return None
        non_null = isinstance(field.type, GraphQLNonNull)
        leaf = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
        if not isinstance(leaf, (GraphQLScalarType, GraphQLEnumType)):
            return None
        plan.append((response_key, definition.python_name, _serializer(leaf), non_null, _EXACT.get(leaf.name)))
    return plan


def _serializer(leaf: GraphQLScalarType | GraphQLEnumType) -> Callable[[Any], Any]:
    """The leaf type's `serialize`, skipped where the value is already what it would return."""
    serialize = leaf.serialize
    exact = _EXACT.get(leaf.name)
    if exact is not None:
        return lambda value: value if type(value) is exact else serialize(value)
    # Enums and dates repeat from line to line (one stream, one write time): remember the last one.
    last: list[Any] = [object(), None]

    def remembered(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, serialize(value)
        return last[1]

    return remembered
