"""The Strawberry GraphQL schema (SPEC §5): `schema` is what server.py serves."""

from __future__ import annotations

import strawberry
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.tools import merge_types

from schema.errors import ErrorCodes
from schema.limits import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS, MaxQueryBytes
from schema.mutations import DataMutation
from schema.permissions import Authentication
from schema.queries import DataQuery

Query = merge_types("Query", (DataQuery,))
Mutation = merge_types("Mutation", (DataMutation,))

schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    extensions=[
        # Order matters: authentication first (nothing else runs for an anonymous call), then the
        # cheap size checks before parsing, then the limits that need the parsed document.
        Authentication,
        MaxQueryBytes,
        ErrorCodes,
        MaxTokensLimiter(max_token_count=MAX_TOKENS),
        QueryDepthLimiter(max_depth=MAX_DEPTH),
        MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
    ],
)

__all__ = ["schema"]
