"""The writes of an apply run, set-based from its work tables (storage/run_work_tables.py): the managers
handed out, the change rows, the customers' new assignments, the history, segment memberships
and rule tags, and fresh planner statistics after them.  Nothing here commits;
:mod:`domain.routing.runs` owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    not_,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from segmenta.storage.dml import insert_ignoring_duplicates
from segmenta.storage.engine import affected_rows
from segmenta.storage.run_work_tables import (
    SEGMENT,
    TAG,
    WorkTables,
    changes,
    customer_tags,
    customers,
    dialect_name,
    history,
    segment_members,
    segments,
    team_members,
)


async def refresh_statistics(session: AsyncSession) -> None:
    """PostgreSQL: fresh planner statistics for the tables an apply rewrites.

    Autovacuum would analyse them eventually, but it may be off or behind, and until
    then the planner keeps yesterday's picture — after a first apply it still believes
    that nobody has a manager, and the next run's load count (customers per manager)
    became a nested loop of index probes: 5–6 s instead of 0.7 s at a million customers.
    """
    if dialect_name(session) == "postgresql":
        await session.execute(text("ANALYZE customers, segment_members, customer_tags"))


# -- manager assignment -------------------------------------------------------------------


async def loads_after_departures(session: AsyncSession, tables: WorkTables, team_ids: Sequence[int]) -> dict[int, int]:
    """Customers per member of the given teams once this run's moves have released their managers.

    A settled customer keeps their manager, so the loads are today's (read from the
    index on customers.manager_id, for those members only: nobody else is assigned)
    with each unsettled customer's manager before replaced by the one they keep
    (none when they move team).
    """
    subject = tables.subjects.c
    members = select(team_members.c.employee_id).where(team_members.c.team_id.in_(list(team_ids)))
    today = (
        select(customers.c.manager_id.label("manager_id"), func.count().label("n"))
        .where(customers.c.manager_id.in_(members))
        .group_by(customers.c.manager_id)
    )
    leaving = select(subject.manager_before, -func.count()).where(subject.unsettled, subject.manager_before.is_not(None)).group_by(
        subject.manager_before
    )
    kept = select(tables.kept_manager.label("manager_id"), func.count()).where(subject.unsettled).group_by(tables.kept_manager)
    moves = union_all(today, leaving, kept).subquery()
    rows = await session.execute(
        select(moves.c.manager_id, func.sum(moves.c.n)).where(moves.c.manager_id.is_not(None)).group_by(moves.c.manager_id)
    )
    return {manager_id: int(count) for manager_id, count in rows.all() if count}


async def needing_managers_by_team(
    session: AsyncSession, tables: WorkTables, automatic_team_ids: Sequence[int]
) -> dict[int, int]:
    """Customers needing a new manager, by the team they go to (one scan of the subjects)."""
    if not automatic_team_ids:
        return {}
    team = tables.subjects.c.rule_team
    rows = await session.execute(
        select(team, func.count()).where(tables.needs_manager(automatic_team_ids)).group_by(team)
    )
    return {team_id: int(count) for team_id, count in rows.all()}


async def candidates_chunk(
    session: AsyncSession,
    tables: WorkTables,
    automatic_team_ids: Sequence[int],
    after_customer_id: int,
    limit: int,
) -> list[tuple[int, int, str | None, str | None]]:
    """(customer id, team id, industry, region) of the next customers needing a manager, by id."""
    subject = tables.subjects.c
    rows = await session.execute(
        select(subject.customer_id, subject.rule_team, subject.industry, subject.region)
        .where(tables.needs_manager(automatic_team_ids), subject.customer_id > after_customer_id)
        .order_by(subject.customer_id)
        .limit(limit)
    )
    return [tuple(row) for row in rows.all()]


async def store_assigned_managers(
    session: AsyncSession, tables: WorkTables, assignments: Sequence[tuple[int, int]]
) -> None:
    """Record (customer id, manager id) pairs (inserted: cheaper than updating the subjects)."""
    if not assignments:
        return
    if dialect_name(session) == "postgresql":
        # One statement per chunk: two arrays unnested side by side.
        statement = text(
            f"INSERT INTO {tables.assigned.name} (customer_id, manager_id) "
            "SELECT * FROM unnest(:customer_ids, :manager_ids)"
        ).bindparams(
            bindparam("customer_ids", type_=ARRAY(Integer)),
            bindparam("manager_ids", type_=ARRAY(Integer)),
        )
        await session.execute(
            statement,
            {
                "customer_ids": [customer_id for customer_id, _ in assignments],
                "manager_ids": [manager_id for _, manager_id in assignments],
            },
        )
        return
    # SQLite: the driver's executemany with plain tuples (through SQLAlchemy's insert()
    # each row's parameters are processed in Python: 0.54 s against 0.19 s per 100,000).
    connection = await session.connection()
    await connection.exec_driver_sql(
        f"INSERT INTO {tables.assigned.name} (customer_id, manager_id) VALUES (?, ?)", list(assignments)
    )


# -- change rows and summary ---------------------------------------------------------------


def _empty_json_array(session: AsyncSession) -> ColumnElement[Any]:
    if dialect_name(session) == "postgresql":
        return literal_column("'[]'::json")
    return literal("[]")


def _reported(tables: WorkTables) -> ColumnElement[bool]:
    return or_(
        tables.team_changes,
        tables.manager_after.is_distinct_from(tables.subjects.c.manager_before),
        tables.label_json.c.customer_id.is_not(None),
    )


async def insert_change_rows(session: AsyncSession, tables: WorkTables, run_id: int) -> int:
    subject, label_json = tables.subjects.c, tables.label_json
    empty = _empty_json_array(session)
    source = (
        select(
            literal(run_id),
            subject.customer_id,
            subject.team_before,
            subject.rule_team,
            subject.manager_before,
            tables.manager_after,
            func.coalesce(label_json.c.segments_added, empty),
            func.coalesce(label_json.c.segments_removed, empty),
            func.coalesce(label_json.c.tags_added, empty),
            func.coalesce(label_json.c.tags_removed, empty),
            subject.rule,
            subject.locked,
        )
        .select_from(tables.subjects_with(labels=True))
        .where(_reported(tables))
    )
    result = await session.execute(
        insert(changes).from_select(
            [
                "run_id",
                "customer_id",
                "team_before_id",
                "team_after_id",
                "manager_before_id",
                "manager_after_id",
                "segments_added",
                "segments_removed",
                "tags_added",
                "tags_removed",
                "deciding_rule",
                "locked",
            ],
            source,
        )
    )
    return affected_rows(result)


async def lock_subjects(session: AsyncSession, tables: WorkTables) -> None:
    """PostgreSQL: lock the subjects' customer rows still at their snapshot version, in id order.

    Real-time routing writes a customer's row before it reads the customer's labels
    (the event's own UPDATE, or the routing version), so from here to the commit it
    waits for this transaction and then reads what the apply wrote.  A row already
    re-routed since the snapshot is not waited for: drop_superseded leaves it out.
    SQLite needs nothing: the writer holds the database's only write lock.
    """
    if dialect_name(session) != "postgresql":
        return
    subject = tables.subjects.c
    locked = (
        select(customers.c.id)
        .join(tables.subjects, subject.customer_id == customers.c.id)
        .where(customers.c.routing_version == subject.version_before)
        .order_by(customers.c.id)
        .with_for_update(of=customers, key_share=True)
        .subquery()
    )
    await session.execute(select(func.count()).select_from(locked))


async def drop_superseded(session: AsyncSession, tables: WorkTables) -> int:
    """Remove from the subjects (and their label changes) the customers re-routed or deleted since the snapshot.

    Their routing was decided in real time, with the same active rules, on data newer
    than the snapshot: the apply's decision for them is stale, so it writes nothing for them.
    """
    subject = tables.subjects.c
    current = exists().where(customers.c.id == subject.customer_id, customers.c.routing_version == subject.version_before)
    result = await session.execute(delete(tables.subjects).where(not_(current)))
    dropped = max(affected_rows(result), 0)
    if dropped:
        diff = tables.label_diff.c
        await session.execute(
            delete(tables.label_diff).where(not_(exists().where(subject.customer_id == diff.customer_id)))
        )
    return dropped


async def update_customers(session: AsyncSession, tables: WorkTables, now: datetime) -> None:
    """New team, manager and deciding rule onto every unlocked subject whose values differ.

    The rows to write are chosen on the subjects table alone (it holds the values before),
    so the join with `customers` only touches the customers that change.
    """
    subject = tables.subjects.c
    changing = (
        select(
            subject.customer_id.label("customer_id"),
            subject.rule_team.label("team_id"),
            tables.manager_after.label("manager_id"),
            subject.rule.label("rule"),
        )
        .select_from(tables.subjects_with())
        .where(
            subject.unsettled,
            not_(subject.locked),
            or_(
                tables.team_changes,
                tables.manager_after.is_distinct_from(subject.manager_before),
                subject.rule_before.is_distinct_from(subject.rule),
            ),
        )
        # Keeps SQLite from flattening the subquery into a scan of every customer probing
        # the subjects: it scans the subjects and probes customers by primary key.
        .order_by(subject.customer_id)
        .subquery()
    )
    statement = (
        update(customers)
        .where(customers.c.id == changing.c.customer_id)
        .values(
            team_id=changing.c.team_id,
            manager_id=changing.c.manager_id,
            deciding_rule=changing.c.rule,
            updated_at=now,
            routing_version=customers.c.routing_version + 1,
        )
    )
    await session.execute(statement)


async def insert_history(session: AsyncSession, tables: WorkTables, run_id: int, now: datetime) -> None:
    subject = tables.subjects.c
    source = (
        select(
            subject.customer_id,
            subject.team_before,
            subject.rule_team,
            subject.manager_before,
            tables.manager_after,
            literal("run"),
            literal(run_id),
            subject.rule,
            literal(now),
        )
        .select_from(tables.subjects_with())
        .where(subject.unsettled, tables.assignment_changes)
    )
    await session.execute(
        insert(history).from_select(
            [
                "customer_id",
                "team_before_id",
                "team_after_id",
                "manager_before_id",
                "manager_after_id",
                "cause",
                "run_id",
                "rule",
                "changed_at",
            ],
            source,
        )
    )


async def existing_segments(session: AsyncSession, keys: Iterable[str]) -> dict[str, tuple[int, str]]:
    """(id, kind) by key, for the given segment keys that exist."""
    key_list = sorted(set(keys))
    if not key_list:
        return {}
    rows = await session.execute(
        select(segments.c.key, segments.c.id, segments.c.kind).where(segments.c.key.in_(key_list))
    )
    return {key: (segment_id, kind) for key, segment_id, kind in rows.all()}


async def create_dynamic_segments(session: AsyncSession, keys: Sequence[str], now: datetime) -> None:
    """Create the segments `keys`; one real-time routing created meanwhile is kept as it is."""
    if keys:
        await session.execute(
            insert_ignoring_duplicates(dialect_name(session), segments),
            [
                {"key": key, "name": key, "description": "maintained by the active ruleset", "kind": "dynamic", "created_at": now}
                for key in keys
            ],
        )


async def apply_label_changes(session: AsyncSession, tables: WorkTables, now: datetime) -> None:
    """Segment members and rule tags to what the rules want: delete removed, insert added.

    Every statement is driven by `label_diff`, so a run that changes little touches little.
    A row already gone is not deleted twice and a row already there is not inserted twice
    (real-time routing writes the same tables), so neither is an error.
    """
    diff = tables.label_diff
    removed_members = (
        select(segment_members.c.id)
        .select_from(diff)
        .join(segments, and_(segments.c.key == diff.c.key, segments.c.kind == "dynamic"))
        .join(
            segment_members,
            and_(segment_members.c.segment_id == segments.c.id, segment_members.c.customer_id == diff.c.customer_id),
        )
        .where(diff.c.kind == SEGMENT, diff.c.added.is_(False))
    )
    await session.execute(delete(segment_members).where(segment_members.c.id.in_(removed_members)))
    await session.execute(
        insert_ignoring_duplicates(dialect_name(session), segment_members).from_select(
            ["segment_id", "customer_id", "added_at"],
            select(segments.c.id, diff.c.customer_id, literal(now))
            .join(segments, segments.c.key == diff.c.key)
            .where(diff.c.kind == SEGMENT, diff.c.added.is_(True)),
        )
    )
    removed_tags = (
        select(customer_tags.c.id)
        .select_from(diff)
        .join(
            customer_tags,
            and_(
                customer_tags.c.customer_id == diff.c.customer_id,
                customer_tags.c.tag == diff.c.key,
                customer_tags.c.source == "rule",
            ),
        )
        .where(diff.c.kind == TAG, diff.c.added.is_(False))
    )
    await session.execute(delete(customer_tags).where(customer_tags.c.id.in_(removed_tags)))
    await session.execute(
        insert_ignoring_duplicates(dialect_name(session), customer_tags).from_select(
            ["customer_id", "tag", "source"],
            select(diff.c.customer_id, diff.c.key, literal("rule")).where(diff.c.kind == TAG, diff.c.added.is_(True)),
        )
    )
