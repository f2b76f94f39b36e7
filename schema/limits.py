"""Limits that keep one request from costing the server too much (documented in docs/graphql.md)."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from schema.errors import BAD_USER_INPUT

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 5_000
MAX_QUERY_BYTES = 50_000


class MaxQueryBytes(SchemaExtension):
    """Refuses a query document over MAX_QUERY_BYTES (UTF-8) before it is parsed."""

    def on_operation(self) -> Iterator[None]:
        query = self.execution_context.query or ""
        size = len(query.encode("utf-8"))
        if size > MAX_QUERY_BYTES:
            raise GraphQLError(
                f"query too large: {size} bytes (at most {MAX_QUERY_BYTES})",
                extensions={"code": BAD_USER_INPUT},
            )
        yield
