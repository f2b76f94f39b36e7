"""The work tables of an evaluation run (preview or apply), for SQLite and PostgreSQL.

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

This module declares the work tables and their codes, and sets up the run's
transaction; storage/run_evaluation.py evaluates into them and reads the summary
figures, storage/routing_queries.py writes an apply's outcome.
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
    case,
    cast,
    func,
    literal,
    not_,
    null,
    or_,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql.elements import ColumnElement

from segmenta.dsl.ast import RuleFile
from segmenta.dsl.sql_compiler import BitPosition, DecidingRule, PackedOutcome, compile_packed
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


async def begin_snapshot(session: AsyncSession) -> None:
    """Make the transaction just begun read one snapshot throughout (PostgreSQL: REPEATABLE READ).

    The evaluation, the labels and the subjects' values before must all describe the
    same moment; under READ COMMITTED each statement would see a newer one.  SQLite's
    read transaction is a snapshot already.
    """
    if dialect_name(session) == "postgresql":
        await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
