"""Evaluating a run into its work tables and reading what it found (storage/run_work_tables.py
describes the tables): the evaluation itself, the census, the label counts and changes, the
subjects, and the figures of the unsettled customers.  Nothing here writes the customers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Table,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    literal_column,
    not_,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from segmenta.storage.engine import affected_rows
from segmenta.storage.run_work_tables import (
    NO_RULE,
    NO_TEAM,
    SEGMENT,
    TAG,
    UNSETTLED,
    WorkTables,
    analyze,
    customer_tags,
    customers,
    dialect_name,
    segment_members,
    segments,
)


async def customer_id_range(session: AsyncSession) -> tuple[int, int] | None:
    # Two scalar subqueries: SQLite answers min() or max() alone from the index end, not both together.
    low, high = (
        await session.execute(select(select(func.min(customers.c.id)).scalar_subquery(), select(func.max(customers.c.id)).scalar_subquery()))
    ).one()
    return None if low is None else (low, high)


def evaluates_in_chunks(session: AsyncSession) -> bool:
    """Whether to evaluate by id ranges (progress as it goes) or in one statement.

    SQLite reads an id range from the table's b-tree directly.  PostgreSQL may plan a
    range of a large share of the table as a scan of all of it (once per chunk), and
    one INSERT … SELECT is a single sequential scan: there, one statement.
    """
    return dialect_name(session) != "postgresql"


async def evaluate_chunk(session: AsyncSession, tables: WorkTables, low: int, high: int) -> None:
    """Evaluate the customers with low <= id < high into the work table (one INSERT … SELECT)."""
    codes = [f"code_{index}" for index in range(len(tables.packed.codes))]
    source = select(customers.c.id, *tables.packed.codes).where(customers.c.id >= low, customers.c.id < high)
    await session.execute(insert(tables.work).from_select(["customer_id", *codes], source))


@dataclass(frozen=True)
class Census:
    """What the codes of every customer add up to (one GROUP BY over the work table)."""

    evaluated: int
    by_decision: dict[int, int]  # customers per decision (0: no team rule decides)
    settled_by_decision: dict[int, int]  # of them, settled: stored team, rule and manager stay, not locked
    unsettled: int
    wanted: dict[tuple[str, str], int]  # customers per (kind, key) the rules give


async def census(session: AsyncSession, tables: WorkTables) -> Census:
    work = tables.work
    codes = [work.c[f"code_{index}"] for index in range(len(tables.packed.codes))]
    rows = (await session.execute(select(*codes, func.count()).group_by(*codes))).all()
    packed = tables.packed
    labels = [((SEGMENT, key), position) for key, position in packed.segments.items()] + [
        ((TAG, key), position) for key, position in packed.tags.items()
    ]
    by_decision: dict[int, int] = {}
    settled: dict[int, int] = {}
    wanted = {label: 0 for label, _ in labels}
    unsettled = 0
    for row in rows:
        row_codes, count = tuple(row[:-1]), int(row[-1])
        decision = packed.decision(row_codes[0])
        by_decision[decision] = by_decision.get(decision, 0) + count
        if packed.extra(row_codes[0]) & UNSETTLED:
            unsettled += count
        else:
            settled[decision] = settled.get(decision, 0) + count
        for label, position in labels:
            if packed.has(row_codes, position):
                wanted[label] += count
    return Census(sum(by_decision.values()), by_decision, settled, unsettled, wanted)


# -- segments and rule tags ---------------------------------------------------------------


async def _holders(
    session: AsyncSession, tables: WorkTables, segment_ids: Mapping[str, int]
) -> dict[tuple[str, str], tuple[int, int]]:
    """(current holders, of them still wanted) per (kind, key), driven by the holders.

    PostgreSQL joins all holders (members of the rules' segments, holders of their
    rule tags) with the work table in one statement, hashing them: the work table is
    scanned once.  SQLite probes the work table by key per holder, one statement per
    kind, grouping in the order of the holders' index (a union would be materialised
    and sorted).
    """
    labels = [(SEGMENT, key, position) for key, position in tables.packed.segments.items() if key in segment_ids]
    labels += [(TAG, key, position) for key, position in tables.packed.tags.items()]
    segment_labels = {segment_ids[key]: index for index, (kind, key, _) in enumerate(labels) if kind == SEGMENT}
    tag_labels = {key: index for index, (kind, key, _) in enumerate(labels) if kind == TAG}
    kinds: list[tuple[Table, ColumnElement[Any], ColumnElement[bool], dict[Any, int]]] = []
    if segment_labels:
        column: ColumnElement[Any] = segment_members.c.segment_id
        kinds.append((segment_members, column, column.in_(list(segment_labels)), segment_labels))
    if tag_labels:
        column = customer_tags.c.tag
        kinds.append((customer_tags, column, and_(customer_tags.c.source == "rule", column.in_(list(tag_labels))), tag_labels))
    work = tables.work

    def still_wanted(label: ColumnElement[Any], indexes: Mapping[Any, int]) -> ColumnElement[int]:
        return case(
            {value: case((tables.wanted(labels[index][2]), 1), else_=0) for value, index in indexes.items()},
            value=label,
            else_=0,
        )

    counts: dict[int, tuple[int, int]] = {}
    if dialect_name(session) == "postgresql" and kinds:
        parts = [
            select(holder.c.customer_id, case(indexes, value=column).label("label")).where(condition)
            for holder, column, condition, indexes in kinds
        ]
        holders = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery()
        every = {index: index for index in range(len(labels))}
        rows = await session.execute(
            select(holders.c.label, func.count(), func.coalesce(func.sum(still_wanted(holders.c.label, every)), 0))
            .select_from(holders.join(work, work.c.customer_id == holders.c.customer_id))
            .group_by(holders.c.label)
        )
        counts = {index: (int(count), int(kept)) for index, count, kept in rows.all()}
    else:
        for holder, column, condition, indexes in kinds:
            rows = await session.execute(
                select(column, func.count(), func.coalesce(func.sum(still_wanted(column, indexes)), 0))
                .select_from(holder.join(work, work.c.customer_id == holder.c.customer_id))
                .where(condition)
                .group_by(column)
            )
            counts.update({indexes[value]: (int(count), int(kept)) for value, count, kept in rows.all()})
    return {(labels[index][0], labels[index][1]): value for index, value in counts.items()}


async def compute_labels(
    session: AsyncSession, tables: WorkTables, dynamic_segment_ids: Mapping[str, int], wanted: Mapping[tuple[str, str], int]
) -> int:
    """Fill `label_diff` (segments and rule tags gained or lost) and `label_json`; the customers in it.

    Gains and losses follow from counts: with H current holders of a label of whom K
    are still wanted and W customers wanted, H − K are lost and W − K gained.  Only
    the labels with some are probed — a gain is a wanted customer lacking the label,
    a loss a holder no longer wanted — so a run that changes nothing reads the
    holders once and never scans the work table for labels.
    """
    work = tables.work
    diff_columns = ["customer_id", "kind", "key", "added"]
    segment_ids = {key: dynamic_segment_ids[key] for key in tables.packed.segments if key in dynamic_segment_ids}
    holders = await _holders(session, tables, segment_ids)
    parts: list[Any] = []
    for kind, positions in ((SEGMENT, tables.packed.segments), (TAG, tables.packed.tags)):
        for key, position in positions.items():
            held, kept = holders.get((kind, key), (0, 0))
            wants = tables.wanted(position)
            if kind == SEGMENT:
                segment_id = segment_ids.get(key)
                holding = (
                    None
                    if segment_id is None  # the segment does not exist yet (preview): nobody is in it
                    else and_(segment_members.c.segment_id == segment_id, segment_members.c.customer_id == work.c.customer_id)
                )
                holder = segment_members
                holder_filter = segment_members.c.segment_id == segment_id
            else:
                holding = and_(
                    customer_tags.c.tag == key, customer_tags.c.source == "rule", customer_tags.c.customer_id == work.c.customer_id
                )
                holder = customer_tags
                holder_filter = and_(customer_tags.c.tag == key, customer_tags.c.source == "rule")
            if wanted.get((kind, key), 0) > kept:
                gained = select(work.c.customer_id, literal(kind), literal(key), literal(True)).where(wants)
                parts.append(gained if holding is None else gained.where(not_(exists().where(holding))))
            if held > kept:
                parts.append(
                    select(work.c.customer_id, literal(kind), literal(key), literal(False))
                    .select_from(holder.join(work, work.c.customer_id == holder.c.customer_id))
                    .where(holder_filter, not_(wants))
                )
    # Segments and rule tags the ruleset no longer produces lose all their members.
    parts.append(
        select(segment_members.c.customer_id, literal(SEGMENT), segments.c.key, literal(False))
        .join(segments, segments.c.id == segment_members.c.segment_id)
        .where(segments.c.kind == "dynamic", segments.c.key.not_in(list(tables.packed.segments)))
    )
    parts.append(
        select(customer_tags.c.customer_id, literal(TAG), customer_tags.c.tag, literal(False)).where(
            customer_tags.c.source == "rule", customer_tags.c.tag.not_in(list(tables.packed.tags))
        )
    )
    rows = 0
    for part in parts:
        result = await session.execute(insert(tables.label_diff).from_select(diff_columns, part))
        rows += max(affected_rows(result), 0)
    if not rows:
        return 0
    result = await session.execute(
        insert(tables.label_json).from_select(
            ["customer_id", "segments_added", "segments_removed", "tags_added", "tags_removed"],
            _label_json_select(session, tables),
        )
    )
    return max(affected_rows(result), 0)


def _label_json_select(session: AsyncSession, tables: WorkTables) -> Any:
    diff = tables.label_diff
    if dialect_name(session) == "postgresql":
        source: FromClause = diff

        def keys(kind: str, added: bool) -> ColumnElement[Any]:
            condition = and_(source.c.kind == kind, source.c.added.is_(added))
            aggregated = func.json_agg(aggregate_order_by(source.c.key, source.c.key)).filter(condition)
            return func.coalesce(aggregated, literal_column("'[]'::json"))

    else:
        # SQLite aggregates in input order, so the rows come sorted from a subquery.
        source = select(diff).order_by(diff.c.customer_id, diff.c.key).subquery()

        def keys(kind: str, added: bool) -> ColumnElement[Any]:
            condition = and_(source.c.kind == kind, source.c.added.is_(added))
            return func.coalesce(func.json_group_array(source.c.key).filter(condition), literal("[]"))

    return select(
        source.c.customer_id,
        keys(SEGMENT, True),
        keys(SEGMENT, False),
        keys(TAG, True),
        keys(TAG, False),
    ).group_by(source.c.customer_id)


# -- subjects -------------------------------------------------------------------------------


async def collect_subjects(session: AsyncSession, tables: WorkTables, *, unsettled: bool, labelled: bool) -> None:
    """Copy the unsettled customers and those whose labels change into `subjects`, decoded.

    Their values before are read from `customers` here, not copied for every customer
    during the evaluation: only the subjects need them.
    """
    work, label_json = tables.work, tables.label_json
    columns = [
        "customer_id", "unsettled", "locked", "team_before", "manager_before", "rule_before",
        "decision", "rule_team", "rule", "industry", "region", "version_before",
    ]

    def rows(driver: Any, flag: bool) -> Any:
        # Outer joins from the driving table fix the join order on SQLite: it reads the
        # (few) chosen rows and probes the others by key, instead of scanning every
        # customer.  Every work row has its customer, so nothing is added.
        code = work.c.code_0
        return select(
            work.c.customer_id,
            literal(flag),
            func.coalesce(customers.c.assignment_locked, literal(False)),
            customers.c.team_id,
            customers.c.manager_id,
            customers.c.deciding_rule,
            tables.decision_of(code),
            tables.by_decision(code, tables.team_by_decision, NO_TEAM),
            tables.by_decision(code, tables.rule_by_decision, NO_RULE),
            customers.c.industry,
            customers.c.region,
            customers.c.routing_version,
        ).select_from(driver.outerjoin(customers, customers.c.id == work.c.customer_id))

    if unsettled:
        await session.execute(insert(tables.subjects).from_select(columns, rows(work, True).where(tables.unsettled)))
    if labelled:
        # Without statistics PostgreSQL took work rows to repeat per customer and hashed every customer.
        await analyze(session, label_json, work)
        # The rest of the customers whose labels change: those not already in (unsettled).
        already = exists().where(tables.subjects.c.customer_id == label_json.c.customer_id)
        driver = label_json.outerjoin(work, work.c.customer_id == label_json.c.customer_id)
        await session.execute(insert(tables.subjects).from_select(columns, rows(driver, False).where(not_(already))))


@dataclass(frozen=True)
class OutcomeGroup:
    """Unsettled customers sharing a deciding rule, a team before and a lock (a row of `outcome_groups`)."""

    rule: str | None
    team_before: int | None
    rule_team: int | None
    locked: bool
    count: int
    changed: int  # of them, customers whose team, manager, segments or tags change
    unassigned: int  # of them, customers left without a manager for want of capacity


async def outcome_groups(
    session: AsyncSession, tables: WorkTables, automatic_team_ids: Sequence[int]
) -> list[OutcomeGroup]:
    """The summary figures of the unsettled customers, from one GROUP BY over the subjects.

    Whether a group's customers move is known per group, so the aggregates are plain
    column tests, and the per-group figures follow in Python from the same
    definitions as `assignment_changes` and `needs_manager`: a customer who moves
    team changes; one who stays keeps a manager they have and changes only when
    given one (or when their segments or tags change).
    """
    subject, label_json = tables.subjects.c, tables.label_json

    def total(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    labelled = label_json.c.customer_id.is_not(None)
    assigned = tables.assigned_manager
    given_manager = and_(subject.manager_before.is_(None), assigned.is_not(None))
    keys: list[ColumnElement[Any]] = [subject.decision, subject.team_before, subject.locked]
    statement = (
        select(
            *keys,
            func.count(),
            total(labelled),
            total(or_(labelled, given_manager)),
            total(assigned.is_(None)),
            total(and_(assigned.is_(None), subject.manager_before.is_(None))),
        )
        .select_from(tables.subjects_with(labels=True))
        .where(subject.unsettled)
        .group_by(*keys)
    )
    automatic = set(automatic_team_ids)
    groups = []
    for row in (await session.execute(statement)).all():
        decision, before, locked = row[0], row[1], bool(row[2])
        rule, rule_team = tables.rule_by_decision[decision], tables.team_by_decision[decision]
        count, labelled_count, staying_changed, unmanaged, unmanaged_before = tuple(row[3:])
        moves = rule_team != before
        if locked:
            changed, unassigned = labelled_count, 0
        elif moves:
            changed, unassigned = count, unmanaged if rule_team in automatic else 0
        else:
            changed, unassigned = staying_changed, unmanaged_before if rule_team in automatic else 0
        groups.append(OutcomeGroup(rule, before, rule_team, locked, int(count), int(changed), int(unassigned)))
    return groups


async def settled_label_changes(session: AsyncSession, tables: WorkTables) -> int:
    """Settled customers whose segments or tags change (they change nothing else)."""
    return int(
        await session.scalar(select(func.count()).select_from(tables.subjects).where(not_(tables.subjects.c.unsettled))) or 0
    )
