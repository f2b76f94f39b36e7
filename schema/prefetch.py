"""A page of customers loads the relations its query selects before its nodes are resolved.

A customer's `team`, `manager`, `segments`, tags and `attributes` come from DataLoaders, one batched
statement each for the whole page (docs/architecture.md, "Data flow of a read").  Left to the
node resolvers, every node's field would wait for its batch: an awaitable per field and node, which
graphql-core runs as a task of its own, about 500 tasks for bench/api.py's page of 100.  So the
`customers` resolver looks at the fields selected under `nodes` / `edges { node }` (fragments
included) and loads those relations for the whole page first: the same statements, run before the
nodes rather than while they wait, each loader filled by one call of its batch function
(`PrefetchLoader.fill`, with no future per key).  The node resolvers then find their values loaded and answer
them at once (`loaded_or_later`, schema/loaders.py): graphql-core completes such fields without a
task.  A relation that is not selected is not loaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from segmenta.schema.context import Info
from segmenta.schema.loaders import Loaders
from segmenta.storage import models

Prefetch = Callable[[Loaders, Sequence[models.Customer]], Awaitable[Any]]


def _teams(loaders: Loaders, rows: Sequence[models.Customer]) -> Awaitable[Any]:
    return loaders.team.fill({row.team_id for row in rows if row.team_id is not None})


def _managers(loaders: Loaders, rows: Sequence[models.Customer]) -> Awaitable[Any]:
    return loaders.employee.fill({row.manager_id for row in rows if row.manager_id is not None})


def _segments(loaders: Loaders, rows: Sequence[models.Customer]) -> Awaitable[Any]:
    return loaders.segments_of_customer.fill([row.id for row in rows])


def _tags(loaders: Loaders, rows: Sequence[models.Customer]) -> Awaitable[Any]:
    return loaders.tags_of_customer.fill([row.id for row in rows])


def _attributes(loaders: Loaders, rows: Sequence[models.Customer]) -> Awaitable[Any]:
    return loaders.attributes_of_customer.fill([row.id for row in rows])


# The Customer fields (GraphQL names) whose values one loader holds for the whole page.
CUSTOMER_RELATIONS: dict[str, Prefetch] = {
    "team": _teams,
    "manager": _managers,
    "segments": _segments,
    "tags": _tags,
    "manualTags": _tags,
    "ruleTags": _tags,
    "attributes": _attributes,
}


async def prefetch_customer_page(
    info: Info, rows: Sequence[models.Customer], selected: Sequence[Selection] | None = None
) -> None:
    """Load, for every row of the page, the relations the connection's nodes select (`selected`: the
    connection field's selections, when the caller has them already)."""
    if not rows:
        return
    names = node_fields(info.selected_fields if selected is None else selected)
    # One load per loader (tags serve three fields): each becomes one batch, one statement.
    chosen = {CUSTOMER_RELATIONS[name] for name in names if name in CUSTOMER_RELATIONS}
    loaders = info.context.loaders
    await asyncio.gather(*(load(loaders, rows) for load in chosen))


def child_fields(selected: Iterable[Selection]) -> set[str]:
    """The field names selected under the current field (fragments included)."""
    return {child.name for field in selected_fields(selected) for child in selected_fields(field.selections)}


def node_fields(selected: Iterable[Selection]) -> set[str]:
    """The field names selected on a connection's nodes: under `nodes` and under `edges { node }`."""
    return {field.name for field in node_selections(selected)}


def node_selections(selected: Iterable[Selection]) -> Iterable[SelectedField]:
    """The fields selected on a connection's nodes (fragments included): under `nodes` and `edges { node }`."""
    for connection in selected_fields(selected):
        for field in selected_fields(connection.selections):
            if field.name == "nodes":
                yield from selected_fields(field.selections)
            elif field.name == "edges":
                for edge_field in selected_fields(field.selections):
                    if edge_field.name == "node":
                        yield from selected_fields(edge_field.selections)


def selected_fields(selections: Iterable[Selection]) -> Iterable[SelectedField]:
    """The fields of a selection set, those of its fragments included."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        elif isinstance(selection, (FragmentSpread, InlineFragment)):
            yield from selected_fields(selection.selections)
