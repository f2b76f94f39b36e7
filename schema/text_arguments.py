"""Text that no database column can hold is refused before a query reads anything.

PostgreSQL text cannot contain NUL, and no driver can encode an unpaired surrogate, so such a
string in a query argument would otherwise fail inside the statement as an internal error (on
SQLite it just matches nothing).  A query, and a subscription, with such an argument, written in
the document or passed as a variable, is refused as a whole with BAD_USER_INPUT naming the
argument.  Mutations are left to the domain, which refuses the same text as a userError on the
input field it arrived in (domain/validation.py), like every other bad value of a write.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    ArgumentNode,
    FieldNode,
    ListValueNode,
    ObjectValueNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    visit,
)
from graphql.language import Visitor
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from segmenta.domain.validation import is_storable
from segmenta.schema.errors import client_error


def _bad_in_value(node: ValueNode, variables: Mapping[str, Any]) -> bool:
    if isinstance(node, StringValueNode):
        return not is_storable(node.value)
    if isinstance(node, ListValueNode):
        return any(_bad_in_value(item, variables) for item in node.values)
    if isinstance(node, ObjectValueNode):
        return any(_bad_in_value(item.value, variables) for item in node.fields)
    if isinstance(node, VariableNode):
        return _bad_in_variable(variables.get(node.name.value))
    return False


def _bad_in_variable(value: Any) -> bool:
    # Variables are bounded in size and depth before they get here (schema/http_body.py).
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not is_storable(item):
                return True
        elif isinstance(item, Mapping):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


class _FirstBadArgument(Visitor):
    def __init__(self, variables: Mapping[str, Any]) -> None:
        super().__init__()
        self.variables = variables
        self.field: str | None = None
        self.found: str | None = None

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        self.field = node.name.value

    def enter_argument(self, node: ArgumentNode, *_: Any) -> Any:
        if self.found is None and _bad_in_value(node.value, self.variables):
            self.found = f"{self.field}({node.name.value}:)"
            return Visitor.BREAK
        return None


def may_hold_unstorable_text(query: str | None, variables: Mapping[str, Any] | None) -> bool:
    """False when no argument of the document can hold NUL or an unpaired surrogate, decided without
    walking the document: its text holds neither and no `\\u` escape (the only way a GraphQL string
    literal can spell one), and no variable holds one.  True sends the document to the full walk,
    which names the argument (or finds that the bad text was elsewhere, e.g. in a comment)."""
    if query is None or "\\u" in query or not is_storable(query):
        return True
    return bool(variables) and _bad_in_variable(variables)


class StorableTextArguments(SchemaExtension):
    """Refuses a query or subscription whose arguments hold NUL or an unpaired surrogate."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if (
            document is not None
            and context.operation_type != OperationType.MUTATION
            and may_hold_unstorable_text(context.query, context.variables)
        ):
            finder = _FirstBadArgument(context.variables or {})
            visit(document, finder)
            if finder.found is not None:
                raise client_error(
                    f"argument {finder.found} contains a NUL character or an unpaired surrogate, "
                    "which no text can hold"
                )
        yield
