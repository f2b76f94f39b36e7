"""Limits that keep one request from costing the server too much (documented in docs/graphql.md
"Limits" and docs/security.md "Request limits").

Every limit is a SEGMENTA_ setting read here and nowhere else (`request_limits()`); a bad value is a
clear error naming the setting.  The HTTP body limits are enforced by schema/http_body.py, the
operation limits (depth, aliases, cost) by `OperationLimits` below over schema/cost.py, the time
limit and client disconnects by server.py.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, cast

from graphql import GraphQLError
from strawberry.extensions import MaxTokensLimiter, SchemaExtension

from segmenta.domain.settings import number_setting
from segmenta.schema.cost import CEILING, Measure, measure_with_dependence
from segmenta.schema.errors import BAD_USER_INPUT

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 5_000
MAX_QUERY_BYTES = 50_000
MAX_QUERY_COST = 50_000
MAX_DUPLICATE_FIELDS = 50
MAX_BODY_BYTES = 1_048_576
MAX_VARIABLES_DEPTH = 20
MAX_VARIABLE_VALUES = 10_000
REQUEST_TIMEOUT = 30.0

# Over-limit operations get this code, with `limit`, `value` and `maximum` beside it.
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"


@dataclass(frozen=True)
class RequestLimits:
    max_query_cost: int = MAX_QUERY_COST
    max_query_depth: int = MAX_DEPTH
    max_aliases: int = MAX_ALIASES
    max_duplicate_fields: int = MAX_DUPLICATE_FIELDS
    max_query_tokens: int = MAX_TOKENS
    max_query_bytes: int = MAX_QUERY_BYTES
    max_body_bytes: int = MAX_BODY_BYTES
    max_variables_depth: int = MAX_VARIABLES_DEPTH
    max_variable_values: int = MAX_VARIABLE_VALUES
    request_timeout: float = REQUEST_TIMEOUT

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> RequestLimits:
        """The limits from their SEGMENTA_ settings (unset or empty: the default); a SettingError names a bad one."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            setting, accepted = SETTINGS[field.name]
            default = cast(float, field.default)  # every field above has a default (never MISSING)
            values[field.name] = number_setting(setting, default, environ=environ, **accepted)
        return cls(**values)


# Each limit's setting and the values it accepts (keyword arguments of domain.settings.number_setting).
SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "max_query_cost": ("SEGMENTA_MAX_QUERY_COST", {"whole": True, "minimum": 1}),
    "max_query_depth": ("SEGMENTA_MAX_QUERY_DEPTH", {"whole": True, "minimum": 1}),
    "max_aliases": ("SEGMENTA_MAX_ALIASES", {"whole": True, "minimum": 0}),
    "max_duplicate_fields": ("SEGMENTA_MAX_DUPLICATE_FIELDS", {"whole": True, "minimum": 0}),
    "max_query_tokens": ("SEGMENTA_MAX_QUERY_TOKENS", {"whole": True, "minimum": 100}),
    "max_query_bytes": ("SEGMENTA_MAX_QUERY_BYTES", {"whole": True, "minimum": 1_000}),
    "max_body_bytes": ("SEGMENTA_MAX_BODY_BYTES", {"whole": True, "minimum": 1_000}),
    "max_variables_depth": ("SEGMENTA_MAX_VARIABLES_DEPTH", {"whole": True, "minimum": 1}),
    "max_variable_values": ("SEGMENTA_MAX_VARIABLE_VALUES", {"whole": True, "minimum": 1}),
    "request_timeout": ("SEGMENTA_REQUEST_TIMEOUT", {"minimum": 0, "minimum_exclusive": True}),
}


@functools.cache
def request_limits() -> RequestLimits:
    """This process's limits, read once (a server reads them at start-up, so a bad value stops it there)."""
    return RequestLimits.from_environment()


def over_limit(measure: Measure, limits: RequestLimits) -> GraphQLError | None:
    """The error refusing an operation measured as `measure`, or None when it is within every limit
    (depth first: it is the limit a client most often meets)."""
    for name, value, maximum, setting in (
        ("depth", measure.depth, limits.max_query_depth, "SEGMENTA_MAX_QUERY_DEPTH"),
        ("aliases", measure.aliases, limits.max_aliases, "SEGMENTA_MAX_ALIASES"),
        ("cost", measure.cost, limits.max_query_cost, "SEGMENTA_MAX_QUERY_COST"),
        ("duplicates", measure.duplicates, limits.max_duplicate_fields, "SEGMENTA_MAX_DUPLICATE_FIELDS"),
    ):
        if value > maximum:
            shown = f"{value}" if value < CEILING else f"more than {CEILING - 1}"
            message = {
                "depth": f"query depth {shown} exceeds maximum operation depth of {maximum}",
                "aliases": f"{shown} aliases exceed the maximum of {maximum} per operation",
                "cost": (
                    f"query cost {shown} exceeds the maximum of {maximum}: each connection multiplies the cost "
                    "of what it selects by its page size `first`; ask for smaller pages or fewer nested lists"
                ),
                "duplicates": (
                    f"one selection set selects {shown} fields again under a response name it already has "
                    f"(fragments included); at most {maximum}"
                ),
            }[name]
            return GraphQLError(
                f"{message} ({setting})",
                extensions={"code": QUERY_TOO_COMPLEX, "limit": name, "value": value, "maximum": maximum},
            )
    return None


class _Measures:
    """Measures of documents that read no variable, by query text and operation name: a known document
    is measured once per process.  Bounded like the parsed documents (schema/documents.py): by count and
    by the text the keys hold; the oldest go first."""

    MAX_ENTRIES = 512
    MAX_TEXT = 512 * 1024

    def __init__(self) -> None:
        self.text = 0
        self._items: OrderedDict[tuple[str, str | None], Measure] = OrderedDict()

    def get(self, key: tuple[str, str | None]) -> Measure | None:
        return self._items.get(key)

    def keep(self, key: tuple[str, str | None], measure: Measure) -> None:
        if len(key[0]) > self.MAX_TEXT or key in self._items:
            return
        self._items[key] = measure
        self.text += len(key[0])
        while len(self._items) > self.MAX_ENTRIES or self.text > self.MAX_TEXT:
            (text, _), _ = self._items.popitem(last=False)
            self.text -= len(text)


_measures = _Measures()


class OperationLimits(SchemaExtension):
    """Measures the parsed operation (schema/cost.py) and refuses it before validation and execution when
    it is too deep, has too many aliases, costs too much or repeats a field too often.  Runs before graphql-core's validation rules,
    so no rule ever walks an oversized document."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None:
            key = (context.query, context.operation_name) if isinstance(context.query, str) else None
            measure = _measures.get(key) if key is not None else None
            if measure is None:
                variables = context.variables if isinstance(context.variables, Mapping) else {}
                measure, depends = measure_with_dependence(
                    context.schema._schema, context.graphql_document, variables, context.operation_name
                )
                if key is not None and not depends:
                    _measures.keep(key, measure)
            error = over_limit(measure, request_limits())
            if error is not None:
                raise error
        yield


def token_limiter() -> MaxTokensLimiter:
    """The parser stops after SEGMENTA_MAX_QUERY_TOKENS tokens (its cost is linear in the document)."""
    return MaxTokensLimiter(max_token_count=request_limits().max_query_tokens)


class MaxQueryBytes(SchemaExtension):
    """Refuses a query document over SEGMENTA_MAX_QUERY_BYTES (UTF-8) before it is parsed."""

    def on_operation(self) -> Iterator[None]:
        query = self.execution_context.query or ""
        limit = request_limits().max_query_bytes
        size = len(query.encode("utf-8"))
        if size > limit:
            raise GraphQLError(
                f"query too large: {size} bytes (at most {limit})",
                extensions={"code": BAD_USER_INPUT},
            )
        yield
