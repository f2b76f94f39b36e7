"""Reads over a run's stored changes (`evaluation_changes`) that the API answers as figures:
how many customers gained or lost each segment and tag, and which changes make one team move.

The segment and tag lists are JSON arrays on each change row; they are unnested and counted in
the database (SQLite `json_each`, PostgreSQL `json_array_elements_text`) in one grouped
statement for any number of runs, so a run of a million changes is never read row by row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, String, and_, false, func, literal, select, true, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.storage.models import EvaluationChange, Team
from segmenta.storage.run_work_tables import dialect_name

SEGMENT = "segment"
TAG = "tag"
ADDED = "added"
REMOVED = "removed"
# (kind, direction) of each JSON list column of a change row.
_LIST_COLUMNS = (
    (SEGMENT, ADDED, EvaluationChange.segments_added),
    (SEGMENT, REMOVED, EvaluationChange.segments_removed),
    (TAG, ADDED, EvaluationChange.tags_added),
    (TAG, REMOVED, EvaluationChange.tags_removed),
)


@dataclass
class LabelChanges:
    """Per label key: customers who gained it and customers who lost it, in one run."""

    segments: dict[str, tuple[int, int]] = field(default_factory=dict)
    tags: dict[str, tuple[int, int]] = field(default_factory=dict)


async def label_changes(session: AsyncSession, run_ids: Sequence[int]) -> dict[int, LabelChanges]:
    """The segment and tag gains and losses of each given run (one statement for all of them)."""
    found = {run_id: LabelChanges() for run_id in run_ids}
    if not found:
        return found
    postgres = dialect_name(session) == "postgresql"
    parts = []
    for kind, direction, column in _LIST_COLUMNS:
        # SQLite's json_each has a `value` column of its own; PostgreSQL's function is named `item(value)`.
        items = (
            func.json_array_elements_text(column).table_valued("value").render_derived(name="item")
            if postgres
            else func.json_each(column).table_valued("value").alias("item")
        )
        parts.append(
            select(
                EvaluationChange.run_id.label("run_id"),
                literal(kind, String).label("kind"),
                literal(direction, String).label("direction"),
                items.c.value.label("label"),
                func.count().label("customers"),
            )
            .select_from(EvaluationChange)
            .join(items, true())
            .where(EvaluationChange.run_id.in_(sorted(found)))
            .group_by(EvaluationChange.run_id, items.c.value)
        )
    rows = await session.execute(union_all(*parts))
    for run_id, kind, direction, label, customers in rows.all():
        target = found[run_id].segments if kind == SEGMENT else found[run_id].tags
        added, removed = target.get(str(label), (0, 0))
        if direction == ADDED:
            added += int(customers)
        else:
            removed += int(customers)
        target[str(label)] = (added, removed)
    return found


def team_id_of(key: str | None) -> ColumnElement[int] | None:
    """The id of the team with `key` as a scalar subquery (no row: NULL, which matches no change);
    None for no team."""
    if key is None:
        return None
    return select(Team.id).where(Team.key == key).scalar_subquery()


def one_move(from_key: str | None, to_key: str | None) -> ColumnElement[bool]:
    """Changes that moved their customer from team `from_key` to team `to_key` (None: no team), as a
    run's `moves` count them: not locked, and the team did change."""
    conditions: list[ColumnElement[bool]] = [EvaluationChange.locked.is_(False)]
    for column, key in ((EvaluationChange.team_before_id, from_key), (EvaluationChange.team_after_id, to_key)):
        team = team_id_of(key)
        conditions.append(column.is_(None) if team is None else column == team)
    if from_key == to_key:
        # Staying put (with a team or without) is not a move: nothing matches.
        conditions.append(false())
    return and_(*conditions)
