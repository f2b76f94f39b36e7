"""Set-based SQL of an evaluation run (preview or apply), for SQLite and PostgreSQL.

A run evaluates the compiled ruleset for every customer inside the database into
a temporary *work* table (one row per customer: team before, deciding rule —
the team follows from it —, and for every segment and tag of the ruleset
whether the rules want it), and then derives everything else from it with
set-based statements:

* ``label_diff`` — the segments and rule tags each customer gains or loses
  (the work table joined with the current members and rule tags);
* ``label_json`` — the per-customer lists of added/removed segments and tags;
* the change rows, the customers' new team/manager, the assignment history,
  segment members and rule tags are each one ``INSERT … SELECT``/``UPDATE``/
  ``DELETE`` over those tables.

Only customers who need a new manager pass through Python (in keyset chunks),
because capacity and preference make assignment sequential.

Nothing here commits; :mod:`domain.runs` owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    cast,
    JSON,
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    not_,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql.elements import ColumnElement

from dsl.sql_compiler import SqlRuleset
from storage.models import (
    AssignmentHistory,
    Customer,
    CustomerTag,
    EvaluationChange,
    Segment,
    SegmentMember,
)

customers = Customer.__table__
# A team id no rule chose; typed, so PostgreSQL does not take a bare NULL for text.
NO_TEAM = cast(null(), Integer)
segments = Segment.__table__
segment_members = SegmentMember.__table__
customer_tags = CustomerTag.__table__
changes = EvaluationChange.__table__
history = AssignmentHistory.__table__

SEGMENT = "segment"
TAG = "tag"


def dialect_name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


@dataclass(frozen=True)
class WorkTables:
    """The temporary tables of one run; `segment_columns`/`tag_columns` map keys to work columns."""

    work: Table
    label_diff: Table
    label_json: Table
    segment_columns: dict[str, Column[Any]]
    tag_columns: dict[str, Column[Any]]
    # Team id by deciding-rule label.  When the labels name the teams unambiguously the
    # team is derived from the stored label, so the rules' conditions are evaluated once
    # per customer (for the label) instead of twice (label and team); otherwise None and
    # the team is evaluated into the `rule_team` column.
    team_by_rule: dict[str, int] | None = None

    @property
    def rule_team(self) -> ColumnElement[Any]:
        """The team the rules chose (NULL: no team rule matched)."""
        work = self.work.c
        if self.team_by_rule is None:
            return work.rule_team
        if not self.team_by_rule:
            return NO_TEAM
        return case(self.team_by_rule, value=work.rule, else_=NO_TEAM)

    @property
    def all(self) -> tuple[Table, ...]:
        return (self.work, self.label_diff, self.label_json)

    # -- derived values of a work row ------------------------------------------------

    @property
    def team_changes(self) -> ColumnElement[bool]:
        """The rules put the customer in another team (for a locked customer: would have)."""
        return self.rule_team.is_distinct_from(self.work.c.team_before)

    @property
    def kept_manager(self) -> ColumnElement[Any]:
        """The manager a customer keeps: locked, or staying in the same team."""
        work = self.work.c
        return case(
            (work.locked, work.manager_before),
            (self.rule_team.is_not_distinct_from(work.team_before), work.manager_before),
            else_=null(),
        )

    @property
    def manager_after(self) -> ColumnElement[Any]:
        return func.coalesce(self.kept_manager, self.work.c.assigned_manager)

    @property
    def team_after(self) -> ColumnElement[Any]:
        work = self.work.c
        return case((work.locked, work.team_before), else_=self.rule_team)

    def needs_manager(self, automatic_team_ids: Sequence[int]) -> ColumnElement[bool]:
        work = self.work.c
        if not automatic_team_ids:
            return literal(False)
        return and_(
            not_(work.locked),
            self.rule_team.in_(list(automatic_team_ids)),
            self.kept_manager.is_(None),
        )

    @property
    def assignment_changes(self) -> ColumnElement[bool]:
        """Team or manager actually changes (never for a locked customer)."""
        return and_(
            not_(self.work.c.locked),
            or_(self.team_changes, self.manager_after.is_distinct_from(self.work.c.manager_before)),
        )


def build_work_tables(
    segment_keys: Sequence[str], tag_keys: Sequence[str], team_by_rule: dict[str, int] | None = None
) -> WorkTables:
    metadata = MetaData()
    temporary: dict[str, Any] = {"prefixes": ["TEMPORARY"], "postgresql_on_commit": "DROP"}
    segment_columns = {key: Column(f"segment_{index}", Boolean) for index, key in enumerate(segment_keys)}
    tag_columns = {key: Column(f"tag_{index}", Boolean) for index, key in enumerate(tag_keys)}
    work = Table(
        "segmenta_run_work",
        metadata,
        Column("customer_id", Integer, primary_key=True),
        Column("locked", Boolean, nullable=False),
        Column("team_before", Integer),
        Column("manager_before", Integer),
        Column("rule_team", Integer),
        Column("rule", String(200)),
        Column("rule_before", String(200)),
        Column("assigned_manager", Integer),
        *segment_columns.values(),
        *tag_columns.values(),
        **temporary,
    )
    label_diff = Table(
        "segmenta_run_label_diff",
        metadata,
        Column("customer_id", Integer, nullable=False),
        Column("kind", String(10), nullable=False),
        Column("key", String(100), nullable=False),
        Column("added", Boolean, nullable=False),
        **temporary,
    )
    label_json = Table(
        "segmenta_run_label_json",
        metadata,
        Column("customer_id", Integer, primary_key=True),
        Column("segments_added", JSON),
        Column("segments_removed", JSON),
        Column("tags_added", JSON),
        Column("tags_removed", JSON),
        **temporary,
    )
    return WorkTables(work, label_diff, label_json, segment_columns, tag_columns, team_by_rule)


async def create_work_tables(session: AsyncSession, tables: WorkTables) -> None:
    await drop_work_tables(session, tables)
    for table in tables.all:
        await session.execute(CreateTable(table))


async def drop_work_tables(session: AsyncSession, tables: WorkTables) -> None:
    for table in tables.all:
        await session.execute(text(f"DROP TABLE IF EXISTS {table.name}"))


async def analyze(session: AsyncSession, *tables: Table) -> None:
    """Give PostgreSQL's planner row counts for freshly filled temporary tables (never auto-analysed)."""
    if dialect_name(session) == "postgresql":
        for table in tables:
            await session.execute(text(f"ANALYZE {table.name}"))


# -- evaluation -------------------------------------------------------------------------


async def customer_id_range(session: AsyncSession) -> tuple[int, int] | None:
    low, high = (await session.execute(select(func.min(customers.c.id), func.max(customers.c.id)))).one()
    return None if low is None else (low, high)


async def evaluate_chunk(
    session: AsyncSession,
    tables: WorkTables,
    compiled: SqlRuleset,
    team_ids: Mapping[str, int],
    low: int,
    high: int,
) -> None:
    """Evaluate the customers with low <= id < high into the work table (one INSERT … SELECT)."""
    work = tables.work
    columns = ["customer_id", "locked", "team_before", "manager_before", "rule_before", "rule"]
    selected: list[ColumnElement[Any]] = [
        customers.c.id,
        func.coalesce(customers.c.assignment_locked, literal(False)),
        customers.c.team_id,
        customers.c.manager_id,
        customers.c.deciding_rule,
        compiled.rule,
    ]
    if tables.team_by_rule is None:
        columns.append("rule_team")
        selected.append(case(dict(team_ids), value=compiled.team, else_=NO_TEAM) if team_ids else NO_TEAM)
    for key, column in tables.segment_columns.items():
        columns.append(column.name)
        selected.append(compiled.segments[key])
    for key, column in tables.tag_columns.items():
        columns.append(column.name)
        selected.append(compiled.tags[key])
    source = select(*selected).where(customers.c.id >= low, customers.c.id < high)
    await session.execute(insert(work).from_select(columns, source))


async def compute_labels(
    session: AsyncSession, tables: WorkTables, dynamic_segment_ids: Mapping[str, int]
) -> None:
    """Fill `label_diff` (segments and rule tags gained or lost) and `label_json` (per customer).

    Set-based against the current state: a gain is a wanted label the customer lacks
    (probed only for the customers who want it), a loss is a current member or tag
    holder the rules no longer want (driven by the members of that segment or tag), so
    the cost follows the labelled customers, not every customer times every label.
    """
    work = tables.work
    diff_columns = ["customer_id", "kind", "key", "added"]
    parts: list[Any] = []
    for key, wanted in tables.segment_columns.items():
        segment_id = dynamic_segment_ids.get(key)
        if segment_id is None:  # the segment does not exist yet (preview): nobody is in it
            parts.append(select(work.c.customer_id, literal(SEGMENT), literal(key), literal(True)).where(wanted.is_(True)))
            continue
        member = and_(segment_members.c.segment_id == segment_id, segment_members.c.customer_id == work.c.customer_id)
        parts.append(
            select(work.c.customer_id, literal(SEGMENT), literal(key), literal(True)).where(
                wanted.is_(True), not_(exists().where(member))
            )
        )
        parts.append(
            select(work.c.customer_id, literal(SEGMENT), literal(key), literal(False))
            .select_from(segment_members.join(work, work.c.customer_id == segment_members.c.customer_id))
            .where(segment_members.c.segment_id == segment_id, wanted.is_(False))
        )
    for key, wanted in tables.tag_columns.items():
        tagged = and_(customer_tags.c.tag == key, customer_tags.c.source == "rule")
        parts.append(
            select(work.c.customer_id, literal(TAG), literal(key), literal(True)).where(
                wanted.is_(True), not_(exists().where(tagged, customer_tags.c.customer_id == work.c.customer_id))
            )
        )
        parts.append(
            select(work.c.customer_id, literal(TAG), literal(key), literal(False))
            .select_from(customer_tags.join(work, work.c.customer_id == customer_tags.c.customer_id))
            .where(tagged, wanted.is_(False))
        )
    # Segments and rule tags the ruleset no longer produces lose all their members.
    orphan_segments = (
        select(segment_members.c.customer_id, literal(SEGMENT), segments.c.key, literal(False))
        .join(segments, segments.c.id == segment_members.c.segment_id)
        .where(segments.c.kind == "dynamic", segments.c.key.not_in(list(tables.segment_columns)))
    )
    orphan_tags = select(customer_tags.c.customer_id, literal(TAG), customer_tags.c.tag, literal(False)).where(
        customer_tags.c.source == "rule", customer_tags.c.tag.not_in(list(tables.tag_columns))
    )
    for part in [*parts, orphan_segments, orphan_tags]:
        await session.execute(insert(tables.label_diff).from_select(diff_columns, part))
    await session.execute(
        insert(tables.label_json).from_select(
            ["customer_id", "segments_added", "segments_removed", "tags_added", "tags_removed"],
            _label_json_select(session, tables),
        )
    )


def _label_json_select(session: AsyncSession, tables: WorkTables) -> Any:
    diff = tables.label_diff
    if dialect_name(session) == "postgresql":
        source = diff

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


# -- manager assignment -------------------------------------------------------------------


async def loads_after_departures(session: AsyncSession, tables: WorkTables) -> dict[int, int]:
    """Customers per manager once this run's moves have released their managers."""
    kept = select(tables.kept_manager.label("manager_id")).subquery()
    rows = await session.execute(
        select(kept.c.manager_id, func.count()).where(kept.c.manager_id.is_not(None)).group_by(kept.c.manager_id)
    )
    return {manager_id: count for manager_id, count in rows.all()}


async def needing_managers_by_team(
    session: AsyncSession, tables: WorkTables, automatic_team_ids: Sequence[int]
) -> dict[int, int]:
    """Customers needing a new manager, by the team they go to (one scan of the work table)."""
    if not automatic_team_ids:
        return {}
    team = tables.rule_team.label("team_id")
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
    work = tables.work
    rows = await session.execute(
        select(work.c.customer_id, tables.rule_team, customers.c.industry, customers.c.region)
        .join(customers, customers.c.id == work.c.customer_id)
        .where(tables.needs_manager(automatic_team_ids), work.c.customer_id > after_customer_id)
        .order_by(work.c.customer_id)
        .limit(limit)
    )
    return [tuple(row) for row in rows.all()]  # type: ignore[misc]


async def store_assigned_managers(
    session: AsyncSession, tables: WorkTables, assignments: Sequence[tuple[int, int]]
) -> None:
    """Write (customer id, manager id) pairs into the work table."""
    if not assignments:
        return
    work = tables.work
    if dialect_name(session) == "postgresql":
        # One statement per chunk: two arrays unnested side by side.
        statement = text(
            f"UPDATE {work.name} SET assigned_manager = pairs.manager_id "
            "FROM unnest(:customer_ids, :manager_ids) AS pairs(customer_id, manager_id) "
            f"WHERE {work.name}.customer_id = pairs.customer_id"
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
    await session.execute(
        update(work)
        .where(work.c.customer_id == bindparam("target_customer"))
        .values(assigned_manager=bindparam("target_manager")),
        [{"target_customer": customer, "target_manager": manager} for customer, manager in assignments],
    )


# -- change rows and summary ---------------------------------------------------------------


def _empty_json_array(session: AsyncSession) -> ColumnElement[Any]:
    if dialect_name(session) == "postgresql":
        return literal_column("'[]'::json")
    return literal("[]")


def _changed_rows(tables: WorkTables) -> Any:
    """work LEFT JOIN label_json, restricted to customers with something to report."""
    work, label_json = tables.work, tables.label_json
    return work.outerjoin(label_json, label_json.c.customer_id == work.c.customer_id)


def _reported(tables: WorkTables) -> ColumnElement[bool]:
    return or_(
        tables.team_changes,
        tables.manager_after.is_distinct_from(tables.work.c.manager_before),
        tables.label_json.c.customer_id.is_not(None),
    )


async def insert_change_rows(session: AsyncSession, tables: WorkTables, run_id: int) -> int:
    work, label_json = tables.work, tables.label_json
    empty = _empty_json_array(session)
    source = (
        select(
            literal(run_id),
            work.c.customer_id,
            work.c.team_before,
            tables.rule_team,
            work.c.manager_before,
            tables.manager_after,
            func.coalesce(label_json.c.segments_added, empty),
            func.coalesce(label_json.c.segments_removed, empty),
            func.coalesce(label_json.c.tags_added, empty),
            func.coalesce(label_json.c.tags_removed, empty),
            work.c.rule,
            work.c.locked,
        )
        .select_from(_changed_rows(tables))
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
    return result.rowcount


@dataclass(frozen=True)
class OutcomeGroup:
    """Customers sharing a deciding rule, a team before and a lock (a row of `outcome_groups`)."""

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
    """Every summary figure from one GROUP BY over the work table (a few hundred groups at most).

    The grouping keys are plain columns (the team follows from the rule, see
    WorkTables.team_by_rule), so whether the group's customers move is known per
    group; the aggregates are plain column tests, and the per-group figures follow
    in Python from the same definitions as `assignment_changes` and `needs_manager`:
    a customer who moves team changes; one who stays keeps a manager they have and
    changes only when given one (or when their segments or tags change).
    """
    work, label_json = tables.work, tables.label_json

    def total(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    labelled = label_json.c.customer_id.is_not(None)
    given_manager = and_(work.c.manager_before.is_(None), work.c.assigned_manager.is_not(None))
    keys: list[ColumnElement[Any]] = [work.c.rule, work.c.team_before, work.c.locked]
    if tables.team_by_rule is None:
        keys.append(work.c.rule_team)
    statement = (
        select(
            *keys,
            func.count(),
            total(labelled),
            total(or_(labelled, given_manager)),
            total(work.c.assigned_manager.is_(None)),
            total(and_(work.c.assigned_manager.is_(None), work.c.manager_before.is_(None))),
        )
        .select_from(_changed_rows(tables))
        .group_by(*keys)
    )
    automatic = set(automatic_team_ids)
    groups = []
    for row in (await session.execute(statement)).all():
        rule, before, locked = row[0], row[1], bool(row[2])
        if tables.team_by_rule is None:
            rule_team, count, labelled_count, staying_changed, unmanaged, unmanaged_before = row[3:]
        else:
            rule_team = None if rule is None else tables.team_by_rule.get(rule)
            count, labelled_count, staying_changed, unmanaged, unmanaged_before = row[3:]
        moves = rule_team != before
        if locked:
            changed, unassigned = labelled_count, 0
        elif moves:
            changed, unassigned = count, unmanaged if rule_team in automatic else 0
        else:
            changed, unassigned = staying_changed, unmanaged_before if rule_team in automatic else 0
        groups.append(OutcomeGroup(rule, before, rule_team, locked, int(count), int(changed), int(unassigned)))
    return groups


async def label_counts(session: AsyncSession, tables: WorkTables) -> dict[tuple[str, str], int]:
    """Customers per (kind, key) the rules want, in one scan."""
    columns = [(SEGMENT, key, column) for key, column in tables.segment_columns.items()] + [
        (TAG, key, column) for key, column in tables.tag_columns.items()
    ]
    if not columns:
        return {}
    row = (
        await session.execute(
            select(*[func.coalesce(func.sum(case((column.is_(True), 1), else_=0)), 0) for _, _, column in columns])
        )
    ).one()
    return {(kind, key): int(count) for (kind, key, _), count in zip(columns, row)}


# -- applying -------------------------------------------------------------------------------


async def update_customers(session: AsyncSession, tables: WorkTables, now: datetime) -> None:
    """New team, manager and deciding rule onto every unlocked customer whose values differ.

    The rows to write are chosen on the work table alone (it holds the values before),
    so the join with `customers` only touches the customers that change.
    """
    work = tables.work
    changing = (
        select(
            work.c.customer_id.label("customer_id"),
            tables.rule_team.label("team_id"),
            tables.manager_after.label("manager_id"),
            work.c.rule.label("rule"),
        )
        .where(
            not_(work.c.locked),
            or_(
                tables.team_changes,
                tables.manager_after.is_distinct_from(work.c.manager_before),
                work.c.rule_before.is_distinct_from(work.c.rule),
            ),
        )
        # Keeps SQLite from flattening the subquery into a scan of every customer probing
        # the work table: it scans the work table and probes customers by primary key.
        .order_by(work.c.customer_id)
        .subquery()
    )
    statement = (
        update(customers)
        .where(customers.c.id == changing.c.customer_id)
        .values(team_id=changing.c.team_id, manager_id=changing.c.manager_id, deciding_rule=changing.c.rule, updated_at=now)
    )
    await session.execute(statement)


async def insert_history(session: AsyncSession, tables: WorkTables, run_id: int, now: datetime) -> None:
    work = tables.work
    source = select(
        work.c.customer_id,
        work.c.team_before,
        tables.rule_team,
        work.c.manager_before,
        tables.manager_after,
        literal("run"),
        literal(run_id),
        work.c.rule,
        literal(now),
    ).where(tables.assignment_changes)
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
    if keys:
        await session.execute(
            insert(segments),
            [
                {"key": key, "name": key, "description": "maintained by the active ruleset", "kind": "dynamic", "created_at": now}
                for key in keys
            ],
        )


async def apply_label_changes(session: AsyncSession, tables: WorkTables, now: datetime) -> None:
    """Segment members and rule tags to what the rules want: delete removed, insert added.

    Every statement is driven by `label_diff`, so a run that changes little touches little.
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
        insert(segment_members).from_select(
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
        insert(customer_tags).from_select(
            ["customer_id", "tag", "source"],
            select(diff.c.customer_id, diff.c.key, literal("rule")).where(diff.c.kind == TAG, diff.c.added.is_(True)),
        )
    )
