"""Top-level GraphQL errors: every one carries `extensions.code`, and unexpected
exceptions are logged and masked so internals never reach a client."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension

from segmenta.domain.errors import Unavailable
from segmenta.schema.ids import InvalidCursor, InvalidId
from segmenta.schema.pagination import PageSizeError
from segmenta.storage.error_translation import translate

logger = logging.getLogger("segmenta.graphql")

BAD_USER_INPUT = "BAD_USER_INPUT"
UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
INTERNAL = "INTERNAL_SERVER_ERROR"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
# The document is not GraphQL at all (graphql-core's syntax errors, the token limit among them).
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"

_BAD_INPUT_TYPES = (InvalidId, InvalidCursor, PageSizeError)


def client_error(message: str, code: str = BAD_USER_INPUT, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extensions})


def is_unexpected(error: GraphQLError) -> bool:
    """True for an exception the client did not cause (a bug or an outage): it is logged and masked."""
    original = error.original_error
    if original is not None and translate(original) is not None:
        return False
    return original is not None and not isinstance(original, (GraphQLError, Unavailable, *_BAD_INPUT_TYPES))


def _at_same_place(
    error: GraphQLError, message: str, extensions: dict[str, Any], original: Exception | None
) -> GraphQLError:
    """`error` with another message and extensions, at the same place in the document and result."""
    return GraphQLError(
        message,
        nodes=error.nodes,
        positions=error.positions,
        source=error.source,
        path=error.path,
        original_error=original,
        extensions=extensions,
    )


def _with_code(error: GraphQLError) -> GraphQLError:
    if error.extensions and "code" in error.extensions:
        return error
    if isinstance(error, GraphQLSyntaxError):
        return _at_same_place(error, error.message, {**(error.extensions or {}), "code": GRAPHQL_PARSE_FAILED}, None)
    original = error.original_error
    if original is not None:
        original = translate(original) or original
    if original is None or isinstance(original, (GraphQLError, *_BAD_INPUT_TYPES)):
        code = GRAPHQL_VALIDATION_FAILED if original is None else BAD_USER_INPUT
        return _at_same_place(error, error.message, {**(error.extensions or {}), "code": code}, original)
    if isinstance(original, Unavailable):
        retry = {} if original.retry_after is None else {"retryAfter": original.retry_after}
        return _at_same_place(error, original.message, {"code": original.code, "retryable": True, **retry}, original)
    # The original stays out of the client's error: only the server log has it.
    return _at_same_place(error, "internal error (logged on the server)", {"code": INTERNAL}, None)


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [_with_code(error) for error in result.errors]
