"""Relay object identification (docs/graphql.md, "Fetching any object by ID"): `node(id)` and
`nodes(ids)` on Query, over every type that implements `Node` (schema/node_interface.py).

An ID names its type (schema/ids.py), so each ID goes to the DataLoader of that type
(schema/loaders.py): the IDs of one `nodes` call, and the `node` fields of one document, are
loaded with one statement per type, whatever their number.  Those loaders apply the caller's
scope exactly as the type's own root field does: a customer outside an agent's scope is null,
as in `customer(id)`; a purchase, interaction, feedback, assignment change or run change is
null unless its customer is in scope (an agent reaches them only through such a customer);
an API token is null for anyone but an admin (domain.access.tokens.tokens_by_id).

A malformed ID (not base64 of `Type:key`, or of a type with no `Node`) is a located
BAD_USER_INPUT error in `node`, as in `customer(id)`; in `nodes` it is null at its place, so
one stale or mangled ID does not cost the others.  A well-formed ID of no row is null in both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated

import strawberry

from segmenta.schema.context import Info
from segmenta.schema.errors import client_error
from segmenta.schema.ids import InvalidId, decode_any_id
from segmenta.schema.node_interface import Node
from segmenta.schema.pagination import MAX_PAGE_SIZE
from segmenta.schema.routing_types import EvaluationChange, EvaluationRun, RulesetType
from segmenta.schema.tokens import ApiToken
from segmenta.schema.types import (
    AssignmentChange,
    Customer,
    Employee,
    Feedback,
    Interaction,
    Purchase,
    Segment,
    Task,
    Team,
)

MAX_NODE_IDS = MAX_PAGE_SIZE
TOO_MANY_IDS = "TOO_MANY_IDS"

NodeLoad = Callable[[Info, int], Awaitable[Node | None]]


async def _customer(info: Info, key: int) -> Node | None:
    row = await info.context.loaders.customer.load(key)
    return Customer.from_row(row, info.context.now) if row is not None else None


async def _team(info: Info, key: int) -> Node | None:
    row = await info.context.loaders.team.load(key)
    return Team.from_row(row) if row is not None else None


async def _employee(info: Info, key: int) -> Node | None:
    row = await info.context.loaders.employee.load(key)
    return Employee.from_row(row) if row is not None else None


async def _segment(info: Info, key: int) -> Node | None:
    row = await info.context.loaders.segment.load(key)
    return Segment.from_row(row) if row is not None else None


async def _purchase(info: Info, key: int) -> Node | None:
    row = await info.context.loaders.purchase.load(key)
    return Purchase.from_row(row) if row is not None else None


async def _task(info: Info, key: int) -> Node | None:
    row = await info.context.loaders.task.load(key)
    return Task.from_row(row, info.context.now) if row is not None else None


async def _interaction(info: Info, key: int) -> Node | None:
    row = await info.context.loaders.interaction.load(key)
    return Interaction.from_row(row) if row is not None else None


async def _feedback(info: Info, key: int) -> Node | None:
    row = await info.context.loaders.feedback.load(key)
    return Feedback.from_row(row) if row is not None else None


async def _assignment_change(info: Info, key: int) -> Node | None:
    row = await info.context.loaders.assignment_change.load(key)
    return AssignmentChange.from_row(row) if row is not None else None


async def _evaluation_change(info: Info, key: int) -> Node | None:
    row = await info.context.loaders.evaluation_change.load(key)
    return EvaluationChange.from_row(row) if row is not None else None


async def _evaluation_run(info: Info, key: int) -> Node | None:
    row = await info.context.loaders.evaluation_run.load(key)
    return EvaluationRun.from_row(row) if row is not None else None


async def _ruleset(info: Info, key: int) -> Node | None:
    row = await info.context.loaders.ruleset.load(key)
    return RulesetType.from_row(row) if row is not None else None


async def _api_token(info: Info, key: int) -> Node | None:
    found = await info.context.loaders.api_token.load(key)
    return ApiToken.from_info(found) if found is not None else None


# The type name inside an ID (schema/ids.py encode_id) → how to load its object.
NODE_LOADS: dict[str, NodeLoad] = {
    "Customer": _customer,
    "Team": _team,
    "Employee": _employee,
    "Segment": _segment,
    "Purchase": _purchase,
    "Interaction": _interaction,
    "Task": _task,
    "Feedback": _feedback,
    "AssignmentChange": _assignment_change,
    "EvaluationChange": _evaluation_change,
    "EvaluationRun": _evaluation_run,
    "Ruleset": _ruleset,
    "ApiToken": _api_token,
}


def _target(value: str) -> tuple[NodeLoad, int]:
    type_name, key = decode_any_id(value)
    load = NODE_LOADS.get(type_name)
    if load is None:
        raise InvalidId(value, "Node")
    return load, key


async def _load_or_none(info: Info, value: str) -> Node | None:
    try:
        load, key = _target(value)
    except InvalidId:
        return None
    return await load(info, key)


@strawberry.type
class NodeQuery:
    @strawberry.field(
        description=(
            "The object with this ID, of any type implementing Node; null when there is none or the caller "
            "may not see it (as the type's own field answers). A malformed ID is a BAD_USER_INPUT error."
        )
    )
    async def node(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="An ID from any earlier response.")]
    ) -> Node | None:
        load, key = _target(id)
        return await load(info, key)

    @strawberry.field(
        description=(
            "The objects with these IDs, in the order given; null at the place of an ID with no object the "
            f"caller may see, and of a malformed one. At most {MAX_NODE_IDS} IDs ({TOO_MANY_IDS} above)."
        )
    )
    async def nodes(
        self,
        info: Info,
        ids: Annotated[list[strawberry.ID], strawberry.argument(description=f"Up to {MAX_NODE_IDS} IDs, of any types.")],
    ) -> list[Node | None]:
        if len(ids) > MAX_NODE_IDS:
            raise client_error(
                f"`ids` may hold at most {MAX_NODE_IDS} IDs (got {len(ids)}); ask in several calls",
                TOO_MANY_IDS,
                maximum=MAX_NODE_IDS,
                value=len(ids),
            )
        # Gathered, so every DataLoader sees all its keys before it runs: one statement per type.
        return list(await asyncio.gather(*(_load_or_none(info, value) for value in ids)))
