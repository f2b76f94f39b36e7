"""Direct resolvers: Strawberry's per-field wrapper replaced, on the built schema, where it does nothing.

Why: Strawberry wraps every field's resolver in a generic one that, on each call, builds an Info,
converts arguments, chains the field extensions (a `reduce` even when there are none) through
closures made for the call, then calls the resolver; a field without a resolver goes through two
calls to reach `getattr`.  On a page of 100 customers that is some 1,600 calls, about a fifth of
the page's CPU.  For most fields every step but the last is a no-op: no arguments, no
extensions, no exception handlers.  `use_direct_resolvers` finds those fields once, after the
schema is built, and gives graphql-core a resolver that does only that last step, exactly as
Strawberry would:

- a field without a resolver: `config.default_resolver(source, python_name)`;
- a resolver whose parameters are `self`, or `self` and `info`: the resolver called with the
  source as `self` and, when it asks for it, `info=config.info_class(_raw_info=..., _field=...)`.
  A coroutine is returned as it is (graphql-core awaits it, as it awaits Strawberry's wrapper).

Every other field keeps Strawberry's wrapper: arguments (their conversion), field extensions
(permission classes are one), exception handlers, `root`/`parent`/`cls` parameters, static or
class methods, subscriptions (their `subscribe` is the resolver), and any resolve that is not the
wrapper Strawberry made (`_is_default` is kept, for tracing extensions that read it).
`QUALIFIES` is the rule, `Rewrite` records each replacement with Strawberry's own resolver, so a
test can answer the same documents both ways.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import GraphQLField, GraphQLObjectType, GraphQLResolveInfo
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

# The names of the functions Strawberry's GraphQLCoreConverter.from_resolver returns.
STRAWBERRY_WRAPPERS = frozenset(
    f"GraphQLCoreConverter.from_resolver.<locals>.{name}" for name in ("_get_basic_result", "_resolver", "_async_resolver")
)
ATTRIBUTE, METHOD, METHOD_WITH_INFO = "attribute", "method", "method with info"


@dataclass(frozen=True)
class Rewrite:
    type_name: str
    field_name: str
    kind: str  # ATTRIBUTE, METHOD or METHOD_WITH_INFO
    is_async: bool
    field: GraphQLField
    strawberry_resolve: Callable[..., Any]
    direct_resolve: Callable[..., Any]


def use_direct_resolvers(schema: strawberry.Schema) -> tuple[Rewrite, ...]:
    """Replaces, on `schema`'s graphql-core schema, every wrapper that `kind_of` allows; once, after building."""
    rewrites = []
    subscription = schema._schema.subscription_type
    for graphql_type in schema._schema.type_map.values():
        # Interface fields are never resolved (graphql-core resolves the concrete type's field).
        if not isinstance(graphql_type, GraphQLObjectType) or graphql_type is subscription:
            continue
        for name, graphql_field in graphql_type.fields.items():
            kind = kind_of(schema, graphql_field)
            if kind is None:
                continue
            field = graphql_field.extensions[GraphQLCoreConverter.DEFINITION_BACKREF]
            direct = _direct_resolver(schema, field, kind)
            strawberry_resolve = graphql_field.resolve
            assert strawberry_resolve is not None  # kind_of found Strawberry's wrapper there
            rewrites.append(
                Rewrite(graphql_type.name, name, kind, field.is_async, graphql_field, strawberry_resolve, direct)
            )
            graphql_field.resolve = direct
    return tuple(rewrites)


def kind_of(schema: strawberry.Schema, graphql_field: GraphQLField) -> str | None:
    """How `graphql_field` may be resolved directly, or None: Strawberry's wrapper is not a no-op around it."""
    field = graphql_field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    resolve = graphql_field.resolve
    if (
        not isinstance(field, StrawberryField)
        or getattr(resolve, "__qualname__", None) not in STRAWBERRY_WRAPPERS
        or graphql_field.subscribe is not None
        or field.is_subscription
        or field.extensions
        or graphql_field.args
        or field.arguments
        or schema.schema_converter._get_field_exception_handlers(field)
    ):
        return None
    resolver = field.base_resolver
    if resolver is None:
        return ATTRIBUTE
    function = resolver.wrapped_func
    # A plain function (not a static or class method, not an async generator), called as Strawberry calls it.
    if not inspect.isfunction(function) or inspect.isasyncgenfunction(function):
        return None
    parameters = list(resolver.signature.parameters.values())
    if resolver.root_parameter or resolver.parent_parameter or not resolver.self_parameter:
        return None
    if parameters == [resolver.self_parameter]:
        return METHOD
    if parameters == [resolver.self_parameter, resolver.info_parameter] and parameters[1].name == "info":
        return METHOD_WITH_INFO
    return None


def _direct_resolver(schema: strawberry.Schema, field: StrawberryField, kind: str) -> Callable[..., Any]:
    if kind == ATTRIBUTE:
        get, name = schema.config.default_resolver, field.python_name

        def attribute(source: Any, info: GraphQLResolveInfo) -> Any:
            return get(source, name)

        attribute._is_default = True  # type: ignore[attr-defined]
        return attribute

    assert field.base_resolver is not None
    function = field.base_resolver.wrapped_func
    assert callable(function)
    if kind == METHOD:

        def method(source: Any, info: GraphQLResolveInfo) -> Any:
            return function(source)

        method._is_default = False  # type: ignore[attr-defined]
        return method

    info_class = schema.config.info_class

    def method_with_info(source: Any, info: GraphQLResolveInfo) -> Any:
        return function(source, info=info_class(_raw_info=info, _field=field))

    method_with_info._is_default = False  # type: ignore[attr-defined]
    return method_with_info
