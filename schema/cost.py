"""How much an operation may cost, measured on its parsed document before anything runs.

One pass gives four numbers for the operation, with every fragment spread counted as if the
fragment were written out in its place:

- depth: levels of nested selections (`{ stats { customerCount } }` is 1); introspection
  (`__schema`, `__type` and everything under them) does not count, so GraphiQL's schema query passes;
- aliases: aliased fields;
- duplicates: the most fields one selection set selects again under a response name it already
  has, through its fragments too (`{ id id }` has 1).  Validation compares such fields pairwise,
  so a few hundred of them take a second to validate however cheap they are to run;
- cost: an estimate of the field values the response can hold.  Every field costs 1; a connection
  field multiplies the cost of what it selects by its page size (`first`, or the field's default,
  at most the largest page), so nested connections multiply; any other list of objects multiplies
  by LIST_SIZE_ESTIMATE, except in introspection, whose lists are bounded by the schema itself,
  and a list fetched by IDs (`nodes(ids)`), which multiplies by the number of IDs given.

Fragments are measured once each, in dependency order, and a spread adds its fragment's stored
measure: the pass is linear in the document, where writing the fragments out would be exponential
(`fragment F1 on Query { ...F0 ...F0 }` … `F40`).  A fragment cycle (which validation rejects
afterwards) contributes nothing instead of looping.  Numbers saturate at CEILING.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)
from graphql.pyutils import Undefined
from graphql.utilities import get_operation_ast

from segmenta.schema.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

# Lists that are not connections (a customer's segments, a team's members) have no page size;
# this many items are assumed per list.
LIST_SIZE_ESTIMATE = DEFAULT_PAGE_SIZE
CEILING = 10**15


@dataclass(frozen=True)
class Measure:
    cost: int = 0
    depth: int = 0
    aliases: int = 0
    # The most fields any one selection set selects again under a response name it already has.
    duplicates: int = 0

    def plus(self, other: Measure) -> Measure:
        return Measure(
            cost=min(self.cost + other.cost, CEILING),
            depth=max(self.depth, other.depth),
            aliases=min(self.aliases + other.aliases, CEILING),
            duplicates=max(self.duplicates, other.duplicates),
        )

    def worst(self, other: Measure) -> Measure:
        return Measure(
            max(self.cost, other.cost),
            max(self.depth, other.depth),
            max(self.aliases, other.aliases),
            max(self.duplicates, other.duplicates),
        )


NOTHING = Measure()
# What one level of a selection set holds: its measure, and how often each response name is
# selected at that level (through its fragments too, as execution and validation merge them).
Level = tuple[Measure, Counter[str]]


def measure_operation(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: Mapping[str, Any] | None = None,
    operation_name: str | None = None,
) -> Measure:
    """The measure of the operation a request runs (`operation_name`, or the document's only one); when
    that is ambiguous (the request is refused later anyway), the worst of the document's operations."""
    return measure_with_dependence(schema, document, variables, operation_name)[0]


def measure_with_dependence(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: Mapping[str, Any] | None = None,
    operation_name: str | None = None,
) -> tuple[Measure, bool]:
    """`measure_operation`, and whether it read a variable (a page size or a list of IDs): when not,
    the measure is the document's whatever the variables, and may be kept for its next request."""
    given = variables or {}
    chosen = get_operation_ast(document, operation_name)
    operations = (
        [chosen] if chosen is not None
        else [item for item in document.definitions if isinstance(item, OperationDefinitionNode)]
    )
    walker = _Walker(schema, _fragments_in_order(document), _variable_values(chosen, given) if chosen else given)
    measured = NOTHING
    for operation in operations:
        measured = measured.worst(walker.selections(operation.selection_set, schema.get_root_type(operation.operation)))
    return measured, walker.read_variables


def _variable_values(operation: OperationDefinitionNode, given: Mapping[str, Any]) -> dict[str, Any]:
    """The request's variables, with the operation's defaults for those not given."""
    values: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if name in given:
            values[name] = given[name]
        elif isinstance(definition.default_value, IntValueNode):
            values[name] = int(definition.default_value.value)
    return values


def _fragments_in_order(document: DocumentNode) -> list[FragmentDefinitionNode]:
    """The document's fragment definitions (the first of each name), every one after the fragments it
    spreads; an edge that would close a cycle is left out."""
    definitions: dict[str, FragmentDefinitionNode] = {}
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            definitions.setdefault(definition.name.value, definition)
    order: list[FragmentDefinitionNode] = []
    done: dict[str, bool] = {}  # False while being visited
    for start in definitions:
        if start in done:
            continue
        done[start] = False
        stack = [(start, iter(_spreads(definitions[start].selection_set)))]
        while stack:
            name, pending = stack[-1]
            following = next(pending, None)
            if following is None:
                stack.pop()
                done[name] = True
                order.append(definitions[name])
            elif following in definitions and following not in done:
                done[following] = False
                stack.append((following, iter(_spreads(definitions[following].selection_set))))
    return order


def _spreads(selection_set: SelectionSetNode) -> Iterable[str]:
    """Names of the fragments spread anywhere in `selection_set` (nested selections included)."""
    pending = [selection_set]
    while pending:
        current = pending.pop()
        for selection in current.selections:
            if isinstance(selection, FragmentSpreadNode):
                yield selection.name.value
            elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set is not None:
                pending.append(selection.selection_set)


class _Walker:
    def __init__(
        self, schema: GraphQLSchema, fragments: list[FragmentDefinitionNode], variables: Mapping[str, Any]
    ) -> None:
        self.schema = schema
        self.variables = variables
        self.read_variables = False
        # In dependency order, every spread inside a fragment finds its fragment measured already.
        self.fragments: dict[str, Level] = {}
        for definition in fragments:
            parent = self._type(definition.type_condition.name.value)
            self.fragments[definition.name.value] = self._level(definition.selection_set, parent)

    def _type(self, name: str) -> GraphQLNamedType | None:
        return self.schema.get_type(name)

    def selections(self, selection_set: SelectionSetNode, parent: GraphQLNamedType | None) -> Measure:
        measure, names = self._level(selection_set, parent)
        duplicates = max(names.values(), default=1) - 1
        return replace(measure, duplicates=max(measure.duplicates, min(duplicates, CEILING)))

    def _level(self, selection_set: SelectionSetNode, parent: GraphQLNamedType | None) -> Level:
        total = NOTHING
        names: Counter[str] = Counter()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                part = self.field(selection, parent)
                names[(selection.alias or selection.name).value] += 1
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                part, inner = self._level(selection.selection_set, self._type(condition.name.value) if condition else parent)
                names.update(inner)
            elif isinstance(selection, FragmentSpreadNode):
                # Not measured yet only inside a cycle or for an unknown name: validation refuses both.
                part, inner = self.fragments.get(selection.name.value, (NOTHING, Counter()))
                names.update(inner)
            else:  # pragma: no cover - graphql-core has no other selection kinds
                continue
            total = total.plus(part)
        return total, names

    def field(self, node: FieldNode, parent: GraphQLNamedType | None) -> Measure:
        aliases = 1 if node.alias is not None else 0
        if node.selection_set is None:
            return Measure(cost=1, aliases=aliases)
        name = node.name.value
        definition = _field(parent, name)
        child_type = get_named_type(definition.type) if definition is not None else None
        inner = self.selections(node.selection_set, child_type)
        introspective = name.startswith("__") or (parent is not None and parent.name.startswith("__"))
        size = 1 if introspective else self._size(node, definition, parent)
        return Measure(
            cost=min(1 + size * inner.cost, CEILING),
            depth=0 if introspective else 1 + inner.depth,
            aliases=min(aliases + inner.aliases, CEILING),
            duplicates=inner.duplicates,
        )

    def _size(self, node: FieldNode, definition: GraphQLField | None, parent: GraphQLNamedType | None) -> int:
        """How many times the field's selection may be resolved per parent value."""
        if definition is None:
            return 1
        if _is_connection(get_named_type(definition.type)):
            return self._page_size(node, definition)
        if _is_list(definition.type) and "ids" in definition.args:
            return self._id_count(node)
        if _is_list(definition.type) and not _is_connection(parent):
            return LIST_SIZE_ESTIMATE
        # A connection's own lists (edges, nodes) are its page, already counted at the connection.
        return 1

    def _id_count(self, node: FieldNode) -> int:
        """A list fetched by IDs (`nodes(ids)`): one item per ID given; the resolver refuses more than a page."""
        argument = next((item for item in node.arguments or () if item.name.value == "ids"), None)
        value: Any = None
        if argument is not None and isinstance(argument.value, ListValueNode):
            value = argument.value.values
        elif argument is not None and isinstance(argument.value, VariableNode):
            value = self.variables.get(argument.value.name.value)
            self.read_variables = True
        count = len(value) if isinstance(value, list | tuple) else 1
        return max(0, min(count, MAX_PAGE_SIZE))

    def _page_size(self, node: FieldNode, definition: GraphQLField) -> int:
        argument = next((item for item in node.arguments or () if item.name.value == "first"), None)
        value: Any = None
        if argument is None:
            declared = definition.args.get("first")
            value = declared.default_value if declared is not None else None
        elif isinstance(argument.value, IntValueNode):
            value = int(argument.value.value)
        elif isinstance(argument.value, VariableNode):
            value = self.variables.get(argument.value.name.value)
            self.read_variables = True
        if value is Undefined or type(value) is not int:
            # Absent, null or not a number (validation or the resolver refuses the last): the default page.
            return DEFAULT_PAGE_SIZE
        # The resolver refuses a page outside 0..MAX_PAGE_SIZE; it never returns more.
        return max(0, min(value, MAX_PAGE_SIZE))


def _field(parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        return parent.fields.get(name)
    return None


def _is_list(type_: Any) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


def _is_connection(type_: GraphQLNamedType | None) -> bool:
    """A Relay connection: an object type with `edges` and `pageInfo`."""
    return isinstance(type_, GraphQLObjectType) and "edges" in type_.fields and "pageInfo" in type_.fields
