"""Set-based SQL of an evaluation run (preview or apply), for SQLite and PostgreSQL.

A run evaluates the rule file for every customer inside the database, once, into a
temporary *work* table: one row per customer holding the rules' whole outcome
packed into integer codes (dsl.sql_compiler.compile_packed): the deciding team
rule, every segment and tag, and an *unsettled* bit computed in the same
expression — set when the customer is locked or when the stored team, deciding
rule or manager may change (the stored values differ from the decision, or the
customer has no manager in a team that assigns them).  Everything else is derived from it with set-based
statements, and the cost of a run that changes little is that of one evaluation:

* the *census* (one GROUP BY over the codes) gives every summary figure of the
  settled customers: per decision, per segment and tag;
* the current members of each segment and holders of each rule tag are counted
  against the work table in one statement per kind; a label needs its gains
  (or losses) inserted into ``label_diff`` only when the counts say it has any;
* ``subjects`` holds only the unsettled customers and those whose labels change,
  with their values before and the team and deciding rule already decoded; manager
  assignment, the change rows, the history, the customers UPDATE and the rest of
  the summary read it.

Only customers who need a new manager pass through Python (in keyset chunks),
because capacity and preference make assignment sequential.

Nothing here commits; :mod:`domain.routing.runs` owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    case,
    cast,
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
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from segmenta.dsl.ast import RuleFile
from segmenta.dsl.sql_compiler import BitPosition, DecidingRule, PackedOutcome, compile_packed
from segmenta.storage.engine import affected_rows
from segmenta.storage.models import (
    AssignmentHistory,
    Customer,
    CustomerTag,
    EvaluationChange,
    Segment,
    SegmentMember,
    TeamMember,
)
from segmenta.storage.rule_fields import CustomerFields

customers = Customer.__table__
# A team id no rule chose; typed, so PostgreSQL does not take a bare NULL for text.
NO_TEAM = cast(null(), Integer)
NO_RULE = cast(null(), String)
segments = Segment.__table__
segment_members = SegmentMember.__table__
customer_tags = CustomerTag.__table__
team_members = TeamMember.__table__
changes = EvaluationChange.__table__
history = AssignmentHistory.__table__

SEGMENT = "segment"
TAG = "tag"
# The lowest bit of code_0 (compile_packed's `extra`): the customer is unsettled.
UNSETTLED = 1


def dialect_name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _bits(column: ColumnElement[int], mask: int) -> ColumnElement[int]:
    return column.op("&")(literal(mask, BigInteger))


def _has(column: ColumnElement[int], mask: int) -> ColumnElement[bool]:
    return _bits(column, mask) != 0


@dataclass(frozen=True)
class WorkTables:
    """The temporary tables of one run and how to read the work table's codes."""

    work: Table
    subjects: Table
    assigned: Table  # managers given by this run's assignment step
    label_diff: Table
    label_json: Table
    packed: PackedOutcome
    # By decision (0: no team rule decides): the team id and the deciding rule's display name.
    team_by_decision: tuple[int | None, ...]
    rule_by_decision: tuple[str | None, ...]

    @property
    def all(self) -> tuple[Table, ...]:
        return (self.work, self.subjects, self.assigned, self.label_diff, self.label_json)

    def code(self, position: BitPosition) -> ColumnElement[int]:
        return self.work.c[f"code_{position.column}"]

    def wanted(self, position: BitPosition) -> ColumnElement[bool]:
        return _has(self.code(position), position.mask)

    @property
    def unsettled(self) -> ColumnElement[bool]:
        # `= 1`, not `!= 0`: PostgreSQL guesses that an equality keeps few rows (true in a
        # steady state) and probes customers by key; for `!=` it hashed every customer.
        return _bits(self.work.c.code_0, UNSETTLED) == UNSETTLED

    def decision_of(self, code_0: ColumnElement[int]) -> ColumnElement[int]:
        shifted = code_0.op(">>")(literal(self.packed.extra_bits, Integer))
        return _bits(shifted, (1 << self.packed.decision_bits) - 1)

    def by_decision(self, code_0: ColumnElement[int], values: Sequence[Any], null: ColumnElement[Any]) -> ColumnElement[Any]:
        """values[decision] for the decision in `code_0` (a team id, a rule name)."""
        whens = {decision: value for decision, value in enumerate(values) if value is not None}
        return case(whens, value=self.decision_of(code_0), else_=null) if whens else null

    # -- derived values of a subject row ---------------------------------------------

    @property
    def team_changes(self) -> ColumnElement[bool]:
        """The rules put the customer in another team (for a locked customer: would have)."""
        return self.subjects.c.rule_team.is_distinct_from(self.subjects.c.team_before)

    @property
    def kept_manager(self) -> ColumnElement[Any]:
        """The manager a customer keeps: locked, or staying in the same team."""
        subject = self.subjects.c
        return case(
            (subject.locked, subject.manager_before),
            (subject.rule_team.is_not_distinct_from(subject.team_before), subject.manager_before),
            else_=null(),
        )

    @property
    def assigned_manager(self) -> ColumnElement[Any]:
        return self.assigned.c.manager_id

    @property
    def manager_after(self) -> ColumnElement[Any]:
        return func.coalesce(self.kept_manager, self.assigned_manager)

    def subjects_with(self, labels: bool = False) -> Any:
        """The subjects with the managers assigned to them (and their label changes): outer joins."""
        joined = self.subjects.outerjoin(self.assigned, self.assigned.c.customer_id == self.subjects.c.customer_id)
        if labels:
            joined = joined.outerjoin(self.label_json, self.label_json.c.customer_id == self.subjects.c.customer_id)
        return joined

    def needs_manager(self, automatic_team_ids: Sequence[int]) -> ColumnElement[bool]:
        subject = self.subjects.c
        if not automatic_team_ids:
            return literal(False)
        return and_(
            not_(subject.locked),
            subject.rule_team.in_(list(automatic_team_ids)),
            self.kept_manager.is_(None),
        )

    @property
    def assignment_changes(self) -> ColumnElement[bool]:
        """Team or manager actually changes (never for a locked customer)."""
        return and_(
            not_(self.subjects.c.locked),
            or_(self.team_changes, self.manager_after.is_distinct_from(self.subjects.c.manager_before)),
        )


def _settled_check(team_ids: Mapping[str, int], automatic_team_ids: Iterable[int]) -> Any:
    """compile_packed's `extra`: 0 when the customer's stored assignment already is the decision's.

    Settled: not locked, the stored team and deciding rule are the decision's, and the
    customer has a manager unless the team assigns none (manual strategy or no team) —
    then nothing about the assignment can change.  Anything else is 1 (unsettled).
    """
    automatic = set(automatic_team_ids)
    row = customers.c

    def check(decision: DecidingRule | None) -> ColumnElement[int]:
        team_id = None if decision is None else team_ids[decision.team]
        rule = None if decision is None else decision.rule
        settled = [
            row.team_id.is_(None) if team_id is None else row.team_id == literal(team_id, Integer),
            row.deciding_rule.is_(None) if rule is None else row.deciding_rule == literal(rule, String),
            not_(func.coalesce(row.assignment_locked, literal(False))),
        ]
        if team_id in automatic:
            settled.append(row.manager_id.is_not(None))
        return case((and_(*settled), literal(0, BigInteger)), else_=literal(UNSETTLED, BigInteger))

    return check


def build_work_tables(
    session: AsyncSession,
    rule_file: RuleFile,
    as_of: datetime,
    team_ids: Mapping[str, int],
    automatic_team_ids: Iterable[int],
) -> WorkTables:
    """Compile the rule file into work-table codes and declare the run's temporary tables."""
    packed = compile_packed(
        rule_file, CustomerFields(), as_of=as_of, extra=_settled_check(team_ids, automatic_team_ids), extra_bits=1
    )
    metadata = MetaData()
    # Kept past the commit of the evaluation's snapshot (the writes follow in a transaction of
    # their own, on the same connection); dropped by drop_work_tables.
    temporary: dict[str, Any] = {"prefixes": ["TEMPORARY"]}
    # On SQLite the key is the table's rowid (lookups by customer for free); PostgreSQL
    # joins the work table by hashing, and an index would only slow its filling down.
    keyed = dialect_name(session) != "postgresql"
    work = Table(
        "segmenta_run_work",
        metadata,
        Column("customer_id", Integer, primary_key=keyed, nullable=False, autoincrement=False),
        *[Column(f"code_{index}", BigInteger, nullable=False) for index in range(len(packed.codes))],
        **temporary,
    )
    subjects = Table(
        "segmenta_run_subjects",
        metadata,
        Column("customer_id", Integer, primary_key=True, autoincrement=False),
        Column("unsettled", Boolean, nullable=False),
        Column("locked", Boolean, nullable=False),
        Column("team_before", Integer),
        Column("manager_before", Integer),
        Column("rule_before", String(200)),
        Column("decision", Integer, nullable=False),
        Column("rule_team", Integer),
        Column("rule", String(200)),
        # What assignment preference reads, copied with the values before.
        Column("industry", String(100)),
        Column("region", String(100)),
        # customers.routing_version in the snapshot: a subject whose version moved since was
        # re-routed in real time meanwhile, on newer data, and is left alone (drop_superseded).
        Column("version_before", Integer, nullable=False),
        **temporary,
    )
    assigned = Table(
        "segmenta_run_assigned",
        metadata,
        Column("customer_id", Integer, primary_key=keyed, nullable=False, autoincrement=False),
        Column("manager_id", Integer, nullable=False),
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
        Column("customer_id", Integer, primary_key=True, autoincrement=False),
        Column("segments_added", JSON),
        Column("segments_removed", JSON),
        Column("tags_added", JSON),
        Column("tags_removed", JSON),
        **temporary,
    )
    team_by_decision = (None, *[team_ids[decision.team] for decision in packed.decisions])
    rule_by_decision = (None, *[decision.rule for decision in packed.decisions])
    return WorkTables(work, subjects, assigned, label_diff, label_json, packed, team_by_decision, rule_by_decision)


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


async def refresh_statistics(session: AsyncSession) -> None:
    """PostgreSQL: fresh planner statistics for the tables an apply rewrites.

    Autovacuum would analyse them eventually, but it may be off or behind, and until
    then the planner keeps yesterday's picture — after a first apply it still believes
    that nobody has a manager, and the next run's load count (customers per manager)
    became a nested loop of index probes: 5–6 s instead of 0.7 s at a million customers.
    """
    if dialect_name(session) == "postgresql":
        await session.execute(text("ANALYZE customers, segment_members, customer_tags"))


# -- evaluation -------------------------------------------------------------------------


async def tune_for_run(session: AsyncSession) -> None:
    """Settings for the run's transaction (PostgreSQL; they end with it).

    No JIT: compiling the large CASE of the rules costs more than it saves (0.8 s
    against 2.1 s for a million customers, measured).  More work memory, and no merge
    joins: the joins of the (unanalysed) work table with the current labels hash in
    memory — right after a run rewrote the segment members their statistics are
    stale, and the planner then chose to sort the million work rows on disk.
    """
    if dialect_name(session) == "postgresql":
        await session.execute(text("SET LOCAL jit = off"))
        await session.execute(text("SET LOCAL work_mem = '64MB'"))
        await session.execute(text("SET LOCAL enable_mergejoin = off"))


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


# -- applying -------------------------------------------------------------------------------


async def begin_snapshot(session: AsyncSession) -> None:
    """Make the transaction just begun read one snapshot throughout (PostgreSQL: REPEATABLE READ).

    The evaluation, the labels and the subjects' values before must all describe the
    same moment; under READ COMMITTED each statement would see a newer one.  SQLite's
    read transaction is a snapshot already.
    """
    if dialect_name(session) == "postgresql":
        await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))


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


def _insert_ignoring_duplicates(session: AsyncSession, table: Table) -> Any:
    """INSERT … ON CONFLICT DO NOTHING (both back ends support it): a row already there stays."""
    if dialect_name(session) == "postgresql":
        return postgresql_insert(table).on_conflict_do_nothing()
    return sqlite_insert(table).on_conflict_do_nothing()



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
            _insert_ignoring_duplicates(session, segments),
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
        _insert_ignoring_duplicates(session, segment_members).from_select(
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
        _insert_ignoring_duplicates(session, customer_tags).from_select(
            ["customer_id", "tag", "source"],
            select(diff.c.customer_id, diff.c.key, literal("rule")).where(diff.c.kind == TAG, diff.c.added.is_(True)),
        )
    )
