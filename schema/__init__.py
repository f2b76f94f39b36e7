"""The Strawberry GraphQL schema (docs/graphql.md): `schema` is what server.py serves."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext
from strawberry.types.base import get_object_definition

from segmenta.schema.assignment import AssignmentMutation, AssignmentQuery
from segmenta.schema.direct_resolvers import use_direct_resolvers
from segmenta.schema.documents import CachedDocuments, PersistedQueries
from segmenta.schema.errors import ErrorCodes, is_unexpected, logger
from segmenta.schema.limits import MaxQueryBytes, OperationLimits, token_limiter
from segmenta.schema.me import MeQuery
from segmenta.schema.money import MONEY
from segmenta.schema.mutations import DataMutation
from segmenta.schema.node import NodeQuery
from segmenta.schema.performance import PerformanceMutation, PerformanceQuery
from segmenta.schema.permissions import Authentication
from segmenta.schema.queries import DataQuery
from segmenta.schema.query_transactions import AutocommitQueries
from segmenta.schema.response_warnings import ResponseWarnings
from segmenta.schema.routing import RoutingMutation, RoutingQuery
from segmenta.schema.rule_tools import RuleToolsQuery
from segmenta.schema.subscriptions import Subscription, refusals_as_results
from segmenta.schema.tasks import TaskMutation, TaskQuery
from segmenta.schema.text_arguments import StorableTextArguments
from segmenta.schema.tokens import TokenMutation, TokenQuery

Query = merge_types(
    "Query",
    (DataQuery, TaskQuery, RoutingQuery, RuleToolsQuery, AssignmentQuery, TokenQuery, MeQuery, NodeQuery, PerformanceQuery),
)
Mutation = merge_types(
    "Mutation", (DataMutation, TaskMutation, RoutingMutation, AssignmentMutation, TokenMutation, PerformanceMutation)
)
# merge_types takes no description: the merged root types get theirs here, for GraphiQL's docs explorer.
get_object_definition(Query, strict=True).description = (
    "Everything a token may read. Every request needs `Authorization: Bearer TOKEN`; an agent's token sees only "
    "their customers (elsewhere such a customer reads as null). Lists are paged: `first` 0–100, default 20."
)
get_object_definition(Mutation, strict=True).description = (
    "Every change. Each mutation runs in its own transaction: bad input comes back in the payload's `userErrors` "
    "and writes nothing. The whole document is refused (FORBIDDEN) when the token's role may not run one of its "
    "mutations; each mutation's description names the roles that may."
)

class SegmentaSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Log only what the client did not cause; bad input is answered, not logged."""
        for error in errors:
            if is_unexpected(error):
                logger.error("unexpected error at %s", error.path, exc_info=error.original_error)

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        """Subscriptions (and websocket operations) refused by Authentication get an error result."""
        return refusals_as_results(await super().stream(*args, **kwargs))


schema = SegmentaSchema(
    # Every Decimal in the schema is money (schema/money.py).
    config=StrawberryConfig(scalar_map={Decimal: MONEY}),
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=[
        # Order matters: authentication first (nothing else runs for an anonymous call), then the
        # cheap size checks before parsing, then the limits that need the parsed document: one
        # linear pass (schema/limits.py) that refuses an over-limit operation before validation.
        # A persisted query's text is found (or checked against its hash) right after authentication,
        # so every later check sees it; a known document skips parsing and validation, never the
        # limits (schema/documents.py).
        Authentication,
        PersistedQueries,
        MaxQueryBytes,
        ErrorCodes,
        token_limiter,
        OperationLimits,
        CachedDocuments,
        # After every check: a refused operation never takes a connection.
        AutocommitQueries,
        StorableTextArguments,
        ResponseWarnings,
    ],
)
# Strawberry's per-field wrapper, where it does nothing, replaced by a direct call (schema/direct_resolvers.py).
DIRECT_RESOLVERS = use_direct_resolvers(schema)

__all__ = ["schema"]
