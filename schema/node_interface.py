"""The Relay `Node` interface: every type with an opaque ID implements it, so a client can refetch any
object by its ID alone (`node(id)`, `nodes(ids)` in schema/node.py) and a normalised cache (Relay,
Apollo, urql) can key objects by `id`.  A module of its own so the type modules can implement it
without importing the resolvers, which import them."""

from __future__ import annotations

import strawberry


@strawberry.interface(
    description=(
        "An object with a globally unique, opaque ID. `node(id)` and `nodes(ids)` fetch any such object "
        "by its ID alone (Relay object identification)."
    )
)
class Node:
    id: strawberry.ID = strawberry.field(
        description="The object's opaque global ID: unique across every type; pass it back as given."
    )
