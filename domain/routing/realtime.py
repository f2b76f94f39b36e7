"""Real-time routing (docs/routing.md, 'Real-time routing'): re-evaluate customers against the active ruleset
inside the transaction that changed them.

Creating or changing a customer, or recording a purchase, interaction or feedback,
calls :func:`reevaluate_customer` at the end of the domain service (domain/customers/profiles.py,
domain/customers/activity.py), so the GraphQL API, the CSV import and scripts all get it.

What happens, with the same semantics as an apply run (domain/routing/runs.py):

* no active ruleset → nothing (one cheap SELECT);
* the rules are evaluated with the Python compiler on the customer's rule values,
  read in the same transaction (domain.customers.metrics.rule_values), at ``as_of`` = now;
* team: the first matching team rule's team (no team rule matches → no team);
  a new team gets a manager by its strategy (domain.routing.assignment); staying in the
  same team keeps the manager;
* ``assignment_locked`` customers keep team and manager; their dynamic segments
  and rule tags still follow the rules (as in apply);
* dynamic-segment memberships and rule tags (``customer_tags.source = 'rule'``)
  become exactly what the rules give;
* a team or manager change writes an ``assignment_history`` row (cause
  ``realtime``, the deciding rule, the run);
* every change (team, manager, segments, tags) writes an ``evaluation_changes``
  row under the *realtime run of the day*: one ``evaluation_runs`` row with mode
  ``realtime`` per active ruleset and UTC day (``as_of`` = midnight), created by
  the first change of that day.  One run row per event would bury the apply runs
  in the run list; one per day keeps "what moved in real time today" one query
  away.  The run row is never updated afterwards (a counter on it would make
  every concurrent real-time write queue on that one row); its changes are the
  record.

The compiled ruleset is cached in-process per (ruleset id, version, source), so a
ruleset is compiled once per process, not per event.
"""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any, cast

from sqlalchemy import (
    DateTime,
    Integer,
    Row,
    bindparam,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain import events
from segmenta.domain.customers.metrics import rule_values
from segmenta.domain.customers.records import (
    MANUAL,
    RULE,
    chunked,
    get_customer_attributes,
    get_customer_categories,
    get_customer_tags,
)
from segmenta.domain.routing import assignment
from segmenta.domain.routing.vocabulary import ASSIGNMENT_CAUSES
from segmenta.domain.staff.vocabulary import AUTOMATIC_STRATEGIES, EVERY_LOAD_STRATEGIES
from segmenta.dsl import ast
from segmenta.dsl.fields import ATTRIBUTE_PREFIX
from segmenta.dsl.ruleset import Ruleset, compile_rules
from segmenta.storage.dml import insert_ignoring_duplicates
from segmenta.storage.models import (
    AssignmentHistory,
    Customer,
    CustomerTag,
    EvaluationChange,
    EvaluationRun,
    RulesetVersion,
    Segment,
    SegmentMember,
    Team,
    utcnow,
)
from segmenta.storage.new_customer_queries import ExistingCustomer, NewCustomerRead, read_new_customer
from segmenta.storage.routing_writes import CustomerAssignment, RoutingWrites, write_routing

logger = logging.getLogger(__name__)

REALTIME = "realtime"
# Compiled rulesets kept per process; a server only ever uses the active one and
# maybe a few being explained, so a handful is plenty.
CACHE_SIZE = 8

_customers = Customer.__table__
_members = SegmentMember.__table__
_tags = CustomerTag.__table__
_changes = EvaluationChange.__table__
_history = AssignmentHistory.__table__
_teams = Team.__table__
_segments = Segment.__table__


# ---------------------------------------------------------------------------
# The compiled active ruleset, cached.
# ---------------------------------------------------------------------------


def _condition_fields(condition: ast.Condition | None, into: set[str]) -> None:
    if condition is None or isinstance(condition, (ast.BoolConst, ast.SegmentRef)):
        return
    if isinstance(condition, ast.Not):
        _condition_fields(condition.operand, into)
    elif isinstance(condition, (ast.And, ast.Or)):
        for operand in condition.operands:
            _condition_fields(operand, into)
    else:
        into.add(condition.subject.name)


def fields_read(rule_file: ast.RuleFile) -> frozenset[str]:
    """Every field name the rule file's conditions read."""
    names: set[str] = set()
    for statement in rule_file.statements:
        _condition_fields(statement.condition, names)
    return frozenset(names)


@dataclass(frozen=True)
class CompiledRules:
    """A saved ruleset compiled for per-customer evaluation, with what it reads and writes."""

    ruleset_id: int
    version: int
    rules: Ruleset
    reads_tags: bool
    reads_attributes: bool
    reads_categories: bool

    @property
    def segment_keys(self) -> tuple[str, ...]:
        return self.rules.segment_keys

    @property
    def tag_names(self) -> tuple[str, ...]:
        return self.rules.tag_names


_cache: OrderedDict[tuple[int, int, str], CompiledRules] = OrderedDict()
# The ruleset this process looked up last: what a new customer's routing is decided
# with *before* the statement that reads the active ruleset (domain/routing/realtime_create.py),
# which then checks the guess.  Only ever a guess: never used unchecked.
_last_used: CompiledRules | None = None


def last_used_rules() -> CompiledRules | None:
    """The compiled ruleset of the last `compiled_rules` call in this process (a guess of the active one)."""
    return _last_used


def saw_no_active_ruleset() -> None:
    """No ruleset is active now: guess none until one is looked up again."""
    global _last_used
    _last_used = None


def compiled_rules(ruleset_id: int, version: int, source: str) -> CompiledRules:
    """The compiled form of a saved ruleset; compiled on first use, then cached.

    The source is part of the key: ids restart in a recreated database, and a
    process may serve several databases (tests do).  Raises dsl.RuleError when the
    source has errors (an active ruleset never has).
    """
    global _last_used
    key = (ruleset_id, version, source)
    found = _cache.get(key)
    if found is not None:
        _cache.move_to_end(key)
        _last_used = found
        return found
    rules = compile_rules(source)
    names = fields_read(rules.rule_file)
    compiled = CompiledRules(
        ruleset_id=ruleset_id,
        version=version,
        rules=rules,
        reads_tags="tags" in names,
        reads_attributes=any(name.startswith(ATTRIBUTE_PREFIX) for name in names),
        reads_categories="product_categories" in names,
    )
    _cache[key] = compiled
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    _last_used = compiled
    return compiled


@dataclass(frozen=True)
class _SingleCustomerRead:
    """What the first statement of a single-customer re-evaluation reads, besides the ruleset."""

    row: Mapping[str, Any] | None
    has_labels: bool
    day_run_id: int | None


@functools.cache
def _active_rules_and_customer_statement() -> Any:
    """Built once: constructing it (and its cache key) per call cost more than running it."""
    customer_id = bindparam("customer_id", type_=Integer())
    dynamic_memberships = (
        select(func.count())
        .select_from(SegmentMember)
        .join(Segment, Segment.id == SegmentMember.segment_id)
        .where(Segment.kind == "dynamic", SegmentMember.customer_id == _customers.c.id)
        .scalar_subquery()
    )
    rule_tags = (
        select(func.count())
        .select_from(CustomerTag)
        .where(CustomerTag.source == RULE, CustomerTag.customer_id == _customers.c.id)
        .scalar_subquery()
    )
    day_run = (
        select(EvaluationRun.id)
        .where(
            EvaluationRun.mode == REALTIME,
            EvaluationRun.ruleset_id == RulesetVersion.id,
            EvaluationRun.as_of == bindparam("day", type_=DateTime()),
        )
        .order_by(EvaluationRun.id)
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(
            RulesetVersion.id.label("active_ruleset_id"),
            RulesetVersion.version.label("active_ruleset_version"),
            RulesetVersion.source.label("active_ruleset_source"),
            day_run.label("day_run_id"),
            (dynamic_memberships + rule_tags).label("label_count"),
            _customers,
        )
        .select_from(RulesetVersion)
        .outerjoin(_customers, _customers.c.id == customer_id)
        .where(RulesetVersion.status == "active")
        .order_by(RulesetVersion.id)
        .limit(1)
    )


async def _active_rules_and_customer(
    session: AsyncSession, customer_id: int, now: datetime
) -> tuple[CompiledRules, _SingleCustomerRead] | None:
    """The active ruleset, the customer's row, whether it has rule outputs, and the day's realtime run.

    One statement, so that routing one customer costs no more round trips for these
    than the "is a ruleset active?" check does; None (and nothing else read) when no
    ruleset is active.
    """
    found: Row[Any] | None = (
        await session.execute(
            _active_rules_and_customer_statement(), {"customer_id": customer_id, "day": day_start(now)}
        )
    ).first()
    if found is None:
        return None
    mapping = found._mapping
    rules = compiled_rules(
        mapping["active_ruleset_id"], mapping["active_ruleset_version"], mapping["active_ruleset_source"]
    )
    if mapping[_customers.c.id] is None:
        return rules, _SingleCustomerRead(row=None, has_labels=False, day_run_id=mapping["day_run_id"])
    row = {column.name: mapping[column] for column in _customers.c}
    return rules, _SingleCustomerRead(
        row=row, has_labels=bool(mapping["label_count"]), day_run_id=mapping["day_run_id"]
    )


_ACTIVE_RULESET = (
    select(RulesetVersion.id, RulesetVersion.version, RulesetVersion.source)
    .where(RulesetVersion.status == "active")
    .order_by(RulesetVersion.id)
    .limit(1)
)


async def active_rules(session: AsyncSession) -> CompiledRules | None:
    """The active ruleset, compiled (cached); None when no ruleset is active."""
    row = (await session.execute(_ACTIVE_RULESET)).first()
    if row is None:
        return None
    return compiled_rules(row.id, row.version, row.source)


# ---------------------------------------------------------------------------
# Reading the customers and their current rule outputs.
#
# Statements are built once per process, with bound parameters (IN lists as
# expanding ones): building them and computing their cache keys per call cost more
# than running them.
# ---------------------------------------------------------------------------

_CUSTOMERS_BY_ID = select(_customers).where(_customers.c.id.in_(bindparam("customer_ids", expanding=True)))


@functools.cache
def _labels_statement() -> Any:
    customer_ids: Any = bindparam("customer_ids", expanding=True)
    segments = (
        select(SegmentMember.customer_id, literal("segment").label("kind"), Segment.key.label("key"))
        .join(Segment, Segment.id == SegmentMember.segment_id)
        .where(Segment.kind == "dynamic", SegmentMember.customer_id.in_(customer_ids))
    )
    tags = select(CustomerTag.customer_id, literal("tag").label("kind"), CustomerTag.tag.label("key")).where(
        CustomerTag.source == RULE, CustomerTag.customer_id.in_(customer_ids)
    )
    return union_all(segments, tags)


async def _load_values(
    session: AsyncSession,
    customer_ids: Sequence[int],
    rules: CompiledRules,
    rows: dict[int, Mapping[str, Any]] | None = None,
) -> tuple[dict[int, Mapping[str, Any]], dict[int, dict[str, Any]]]:
    """The customers' rows (read unless given) and rule values; tags, attributes and categories only when the rules read them."""
    if rows is None:
        rows = {}
        for chunk in chunked(list(customer_ids)):
            for row in await session.execute(_CUSTOMERS_BY_ID, {"customer_ids": list(chunk)}):
                rows[row.id] = cast(Mapping[str, Any], row._mapping)  # RowMapping's key type also admits columns
    found = list(rows)
    tags = await get_customer_tags(session, found, source=MANUAL) if rules.reads_tags else {}
    attributes = await get_customer_attributes(session, found) if rules.reads_attributes else {}
    categories = await get_customer_categories(session, found) if rules.reads_categories else {}
    values = {
        customer_id: rule_values(
            row, tags.get(customer_id, ()), attributes.get(customer_id, {}), categories.get(customer_id, ())
        )
        for customer_id, row in rows.items()
    }
    return rows, values


_LOCK_CUSTOMERS = (
    select(_customers)
    .where(_customers.c.id.in_(bindparam("customer_ids", expanding=True)))
    .order_by(_customers.c.id)
    .with_for_update(key_share=True)  # as an UPDATE locks; inserts referring to the customer pass
)


async def _lock_customers(session: AsyncSession, customer_ids: Sequence[int]) -> dict[int, Mapping[str, Any]]:
    """PostgreSQL: lock the customers' rows (in id order) before their labels are read; their current rows.

    An apply writing the same customers holds these locks until it commits, so what is
    read after this is what it wrote (docs/routing.md, "Applies and real-time writes").
    The change that triggered the re-evaluation may have written the row already (then
    the lock is this transaction's own), or not (an edit of tags or attributes only).
    """
    rows: dict[int, Mapping[str, Any]] = {}
    for chunk in chunked(sorted(customer_ids)):
        for row in await session.execute(_LOCK_CUSTOMERS, {"customer_ids": list(chunk)}):
            rows[row.id] = {column.name: row._mapping[column] for column in _customers.c}
    return rows


async def current_labels(
    session: AsyncSession, customer_ids: Sequence[int]
) -> dict[int, tuple[set[str], set[str]]]:
    """(dynamic segment keys, rule tags) per customer, as stored now; one query per chunk."""
    result: dict[int, tuple[set[str], set[str]]] = {customer_id: (set(), set()) for customer_id in customer_ids}
    for chunk in chunked(list(customer_ids)):
        for customer_id, kind, key in await session.execute(_labels_statement(), {"customer_ids": list(chunk)}):
            result[customer_id][0 if kind == "segment" else 1].add(key)
    return result


# ---------------------------------------------------------------------------
# Deciding.
# ---------------------------------------------------------------------------


@dataclass
class RealtimeChange:
    """What one real-time evaluation changed for one customer."""

    customer_id: int
    rule: str | None
    locked: bool
    team_before: int | None
    team_after: int | None
    manager_before: int | None
    manager_after: int | None
    segments_added: list[str] = field(default_factory=list)
    segments_removed: list[str] = field(default_factory=list)
    tags_added: list[str] = field(default_factory=list)
    tags_removed: list[str] = field(default_factory=list)
    rule_team: int | None = None
    """The team the rules chose (differs from team_after only for a locked customer)."""
    run_id: int | None = None

    @property
    def assignment_changed(self) -> bool:
        return self.team_before != self.team_after or self.manager_before != self.manager_after

    @property
    def labels_changed(self) -> bool:
        return bool(self.segments_added or self.segments_removed or self.tags_added or self.tags_removed)


@dataclass
class _Decision:
    customer_id: int
    row: Mapping[str, Any]
    team_key: str | None
    rule: str | None
    segments: tuple[str, ...]
    tags: tuple[str, ...]
    rule_team: int | None = None
    team_known: bool = True
    manager_after: int | None = None


SegmentRow = tuple[str, int, str]
"""(key, id, kind) of a stored segment."""


@functools.cache
def _teams_and_segments_statement(teams: bool, segments: bool) -> Any:
    parts = []
    if teams:
        parts.append(
            select(literal("team").label("what"), Team.key, Team.id, Team.strategy.label("detail")).where(
                Team.key.in_(bindparam("team_keys", expanding=True))
            )
        )
    if segments:
        parts.append(
            select(literal("segment").label("what"), Segment.key, Segment.id, Segment.kind.label("detail")).where(
                Segment.key.in_(bindparam("segment_keys", expanding=True))
            )
        )
    return parts[0] if len(parts) == 1 else union_all(*parts)


async def _teams_and_segments_by_key(
    session: AsyncSession, team_keys: Iterable[str], segment_keys: Iterable[str]
) -> tuple[dict[str, tuple[int, str]], list[SegmentRow]]:
    """Teams (id, strategy) and segments (key, id, kind) by key, in one statement."""
    teams_wanted, segments_wanted = sorted(set(team_keys)), sorted(set(segment_keys))
    if not (teams_wanted or segments_wanted):
        return {}, []
    teams: dict[str, tuple[int, str]] = {}
    segments: list[SegmentRow] = []
    rows = await session.execute(
        _teams_and_segments_statement(bool(teams_wanted), bool(segments_wanted)),
        {"team_keys": teams_wanted, "segment_keys": segments_wanted},
    )
    for what, key, found_id, detail in rows:
        if what == "team":
            teams[key] = (found_id, detail)
        else:
            segments.append((key, found_id, detail))
    return teams, segments


async def _read_team(
    session: AsyncSession,
    team_key: str | None,
    segment_keys: Collection[str],
    *,
    with_loads: bool,
    existing: ExistingCustomer | None = None,
) -> NewCustomerRead:
    """The team `team_key` with its active members — locked on PostgreSQL, the team row first, then
    the members' employee rows in id order (domain/routing/assignment.py's order); for an `existing`
    customer only when it needs a manager — and the segments `segment_keys`, in one statement
    (storage/new_customer_queries.py); with the members' loads that can matter when `with_loads`
    (only where no lock is taken: a locked row's load must be counted by a later statement, which
    sees what committed while waiting)."""
    return await read_new_customer(
        session,
        head=None,
        team_key=team_key,
        segment_keys=sorted(segment_keys),
        guess=None,
        with_loads=with_loads,
        realtime_mode=REALTIME,
        automatic_strategies=AUTOMATIC_STRATEGIES,
        every_load_strategies=EVERY_LOAD_STRATEGIES,
        existing=existing,
    )


_LOADS = (
    select(Customer.manager_id, func.count())
    .where(Customer.manager_id.in_(bindparam("employee_ids", expanding=True)))
    .group_by(Customer.manager_id)
)


async def _lock_team_assigners(session: AsyncSession, needing: Sequence[_Decision]) -> dict[int, assignment.TeamAssigner]:
    """The assigners of the teams `needing` join, locked and with their members' loads (as
    domain.routing.assignment.load_team_assigners builds them); in two statements when it is one team."""
    team_ids = sorted({d.rule_team for d in needing if d.rule_team is not None})
    if len(team_ids) == 1:
        row_locks = assignment.has_row_locks(session)
        read = await _read_team(session, needing[0].team_key, (), with_loads=not row_locks)
        if read.team is not None and read.team[0] == team_ids[0]:
            return await _assigners_read(session, read, row_locks)
    return await assignment.load_team_assigners(session, team_ids)


async def _assigners_read(
    session: AsyncSession, read: NewCustomerRead, row_locks: bool
) -> dict[int, assignment.TeamAssigner]:
    """The assigner of the team `read` brought; its members' loads counted now when they were locked by it."""
    assert read.team is not None
    loads = read.loads
    if row_locks and read.members:
        employee_ids = sorted(member[1] for member in read.members)
        rows = await session.execute(_LOADS, {"employee_ids": employee_ids})
        # manager_id is never NULL here (the IN filter); the test narrows its type.
        loads = {manager_id: count for manager_id, count in rows if manager_id is not None}
    return assignment.build_assigners([read.team], read.members, loads)


async def _assign_new_managers(
    session: AsyncSession,
    decisions: Sequence[_Decision],
    strategies: Mapping[int, str],
    assigners: Mapping[int, assignment.TeamAssigner] | None,
) -> list[assignment.TeamAssigner]:
    """Managers for the unlocked customers who need one (new team, or same team without one).

    `assigners`: those read with the team (one customer), when they cover the teams
    joined.  Returns the assigners used (their round-robin positions are for the writes).
    """
    needing = [
        d
        for d in decisions
        if not d.row["assignment_locked"]
        and d.team_known
        and d.rule_team is not None
        and strategies.get(d.rule_team) in AUTOMATIC_STRATEGIES
        and d.manager_after is None
    ]
    if not needing:
        return []
    if assigners is None or any(d.rule_team not in assigners for d in needing):
        assigners = await _lock_team_assigners(session, needing)
    states = {id(m): m for a in assigners.values() for m in a.members}
    by_employee = {m.employee_id: m for m in states.values()}
    needs_manager = {id(d) for d in needing}
    # In the customers' order, each mover first releases its old manager (the stored
    # loads still count it), then gets its new one: several customers re-routed in one
    # call get exactly the managers they would get re-routed one after the other (the
    # CSV import's batched updates rely on it).
    for decision in decisions:
        manager_id = decision.row["manager_id"]
        if not decision.row["assignment_locked"] and manager_id is not None and decision.manager_after is None:
            member = by_employee.get(manager_id)
            if member is not None and member.load > 0:
                member.load -= 1
        if id(decision) in needs_manager:
            assert decision.rule_team is not None
            candidate = assignment.Candidate(decision.customer_id, decision.row["industry"], decision.row["region"])
            decision.manager_after = assigners[decision.rule_team].assign(candidate)
    return list(assigners.values())


async def _decide(
    session: AsyncSession,
    rules: CompiledRules,
    customer_ids: Sequence[int],
    as_of: datetime,
    labels: Mapping[int, tuple[set[str], set[str]]],
    rows: dict[int, Mapping[str, Any]] | None = None,
) -> tuple[list[_Decision], list[SegmentRow], list[assignment.TeamAssigner]]:
    """The decisions, the stored segments any of them may join or leave (read with the teams),
    and the assigners that handed out managers."""
    rows, values = await _load_values(session, customer_ids, rules, rows)
    decisions: list[_Decision] = []
    for customer_id in customer_ids:
        if customer_id not in values:
            continue
        team, rule, segments, tags = rules.rules.decide(values[customer_id], as_of)
        decisions.append(_Decision(customer_id, rows[customer_id], team, rule, segments, tags))
    # Segments joined are among the rules' outputs, segments left among the stored memberships.
    segment_keys = {key for d in decisions for key in d.segments}
    segment_keys.update(key for d in decisions for key in labels[d.customer_id][0])
    team_keys = {d.team_key for d in decisions if d.team_key is not None}
    read_assigners: dict[int, assignment.TeamAssigner] | None = None
    if len(decisions) == 1 and (team_keys or segment_keys):
        # One customer: its team (with the members, locked on PostgreSQL, when it needs a
        # manager) and the segments in one statement.
        row = decisions[0].row
        existing = ExistingCustomer(
            assignment_locked=bool(row["assignment_locked"]),
            manager_kept_in=row["team_id"] if row["manager_id"] is not None else None,
        )
        row_locks = assignment.has_row_locks(session)
        (team_key,) = team_keys or (None,)
        read = await _read_team(session, team_key, segment_keys, with_loads=not row_locks, existing=existing)
        teams = {team_key: read.team[:2]} if team_key is not None and read.team is not None else {}
        stored_segments = read.segments
        if read.team is not None:
            read_assigners = await _assigners_read(session, read, row_locks)
    else:
        teams, stored_segments = await _teams_and_segments_by_key(session, team_keys, segment_keys)
    strategies: dict[int, str] = {}
    for decision in decisions:
        row = decision.row
        if decision.team_key is not None:
            found = teams.get(decision.team_key)
            if found is None:
                # Deleted after activation: keep the assignment rather than fail the caller's write.
                logger.warning("real-time routing: team %r of the active ruleset does not exist", decision.team_key)
                decision.team_known = False
            else:
                team_id, strategy = found
                decision.rule_team = team_id
                strategies[team_id] = strategy
        if not decision.team_known:
            decision.rule_team = row["team_id"]
        if row["assignment_locked"] or not decision.team_known:
            decision.manager_after = row["manager_id"]
        elif decision.rule_team == row["team_id"]:
            decision.manager_after = row["manager_id"]
    assigners = await _assign_new_managers(session, decisions, strategies, read_assigners)
    return decisions, stored_segments, assigners


# ---------------------------------------------------------------------------
# Writing.
# ---------------------------------------------------------------------------


def day_start(moment: datetime) -> datetime:
    return datetime.combine(moment.date(), time.min)


_DAY_RUN = (
    select(EvaluationRun.id)
    .where(
        EvaluationRun.mode == REALTIME,
        EvaluationRun.ruleset_id == bindparam("run_ruleset", type_=Integer()),
        EvaluationRun.as_of == bindparam("day", type_=DateTime()),
    )
    .order_by(EvaluationRun.id)
    .limit(1)
)


async def realtime_run_id(
    session: AsyncSession, ruleset_id: int, now: datetime, *, known: int | None = None
) -> int:
    """The realtime run of `ruleset_id` for the UTC day of `now`, created on first use.

    `known` is the run id the caller already read in this transaction (it is then
    returned as is).  Two transactions that both make the day's first change at the
    same instant may each create one (there is no unique key to arbitrate); both rows
    are then valid realtime runs of that day.
    """
    if known is not None:
        return known
    day = day_start(now)
    found = await session.scalar(_DAY_RUN, {"run_ruleset": ruleset_id, "day": day})
    if found is not None:
        return found
    run = EvaluationRun(
        ruleset_id=ruleset_id, mode=REALTIME, status="succeeded", as_of=day, started_at=now, summary={}
    )
    session.add(run)
    await session.flush()
    return run.id


async def dynamic_segment_ids(
    session: AsyncSession, keys: Collection[str], now: datetime, known: Sequence[SegmentRow]
) -> dict[str, int]:
    """Ids of the dynamic segments `keys`, creating the missing ones (as apply does).

    `known` are the stored segments read earlier in this transaction for a superset
    of `keys`.  A key that names a manual segment is left out: rules never maintain
    manual segments.
    """
    if not keys:
        return {}
    rows = [row for row in known if row[0] in keys]
    ids = {key: segment_id for key, segment_id, kind in rows if kind == "dynamic"}
    manual = sorted(key for key, _, kind in rows if kind != "dynamic")
    if manual:
        logger.warning("real-time routing: %s are manual segments; the rules do not maintain them", manual)
    missing = sorted(set(keys) - {key for key, _, _ in rows})
    if not missing:
        return ids
    # Another transaction (real time, or an apply) may create the same segment at the same
    # moment: a key already taken is skipped, then every missing key is read back.
    await session.execute(
        insert_ignoring_duplicates(session.get_bind().dialect.name, _segments),
        [
            {"key": key, "name": key, "description": "maintained by the active ruleset", "kind": "dynamic", "created_at": now}
            for key in missing
        ],
    )
    created = await session.execute(select(_segments.c.key, _segments.c.id, _segments.c.kind).where(_segments.c.key.in_(missing)))
    for key, segment_id, kind in created.all():
        if kind == "dynamic":
            ids[key] = segment_id
    return ids


def _assignment_moves(decisions: Sequence[_Decision]) -> set[int]:
    """The unlocked customers whose team, manager or deciding rule differ from the stored ones."""
    moved = set()
    for decision in decisions:
        row = decision.row
        if row["assignment_locked"] or not decision.team_known:
            continue
        if (row["team_id"], row["manager_id"], row["deciding_rule"]) != (
            decision.rule_team,
            decision.manager_after,
            decision.rule,
        ):
            moved.add(decision.customer_id)
    return moved


async def _add_label_writes(
    session: AsyncSession,
    writes: RoutingWrites,
    changes: Sequence[RealtimeChange],
    known_segments: Sequence[SegmentRow],
) -> None:
    removed_segments = [(c.customer_id, key) for c in changes for key in c.segments_removed]
    added_segments = [(c.customer_id, key) for c in changes for key in c.segments_added]
    segment_ids = await dynamic_segment_ids(
        session, {key for _, key in removed_segments + added_segments}, writes.now, known_segments
    )
    writes.segments_left = [(customer, segment_ids[key]) for customer, key in removed_segments if key in segment_ids]
    writes.segments_joined = [(customer, segment_ids[key]) for customer, key in added_segments if key in segment_ids]
    writes.tags_removed = [(c.customer_id, tag) for c in changes for tag in c.tags_removed]
    writes.tags_added = [(c.customer_id, tag) for c in changes for tag in c.tags_added]


def _change_rows(changes: Sequence[RealtimeChange], run_id: int) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "customer_id": c.customer_id,
            "team_before_id": c.team_before,
            # As in apply runs: for a locked customer, the team the rules would have chosen.
            "team_after_id": c.rule_team if c.locked else c.team_after,
            "manager_before_id": c.manager_before,
            "manager_after_id": c.manager_after,
            "segments_added": c.segments_added,
            "segments_removed": c.segments_removed,
            "tags_added": c.tags_added,
            "tags_removed": c.tags_removed,
            "deciding_rule": c.rule,
            "locked": c.locked,
        }
        for c in changes
    ]


def _history_rows(changes: Sequence[RealtimeChange], run_id: int, cause: str, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "customer_id": c.customer_id,
            "team_before_id": c.team_before,
            "team_after_id": c.team_after,
            "manager_before_id": c.manager_before,
            "manager_after_id": c.manager_after,
            "cause": cause,
            "run_id": run_id,
            "rule": c.rule,
            "changed_at": now,
        }
        for c in changes
        if c.assignment_changed
    ]


async def _write(
    session: AsyncSession,
    decisions: Sequence[_Decision],
    changes: Sequence[RealtimeChange],
    assigners: Sequence[assignment.TeamAssigner],
    *,
    ruleset_id: int,
    cause: str,
    now: datetime,
    known_segments: Sequence[SegmentRow],
    known_run_id: int | None,
) -> None:
    """The new assignments, memberships, rule tags, change and history rows and round-robin positions,
    through the one write path (storage.routing_writes); the history announced after the commit."""
    moved = _assignment_moves(decisions)
    writes = RoutingWrites(
        now=now,
        customers=[
            CustomerAssignment(d.customer_id, d.customer_id in moved, d.rule_team, d.manager_after, d.rule)
            for d in decisions
        ],
        # What domain.routing.assignment.save_positions writes.
        positions=[(a.team_id, a.position_to_store) for a in assigners if a.position_to_store is not None],
    )
    if changes:
        # Rarely anything to create (the day's first change, a segment the rules name for
        # the first time): done first, since the writes refer to them.
        await _add_label_writes(session, writes, changes, known_segments)
        run_id = await realtime_run_id(session, ruleset_id, now, known=known_run_id)
        for change in changes:
            change.run_id = run_id
        writes.changes = _change_rows(changes, run_id)
        writes.history = _history_rows(changes, run_id, cause, now)
    await write_routing(session, writes)
    events.record_assignment_changes(session, writes.history)



async def reevaluate_customers(
    session: AsyncSession, customer_ids: Collection[int], *, cause: str = REALTIME
) -> list[RealtimeChange]:
    """Re-route the given customers with the active ruleset, in the caller's transaction.

    Returns what changed (customers with nothing to change are left out).  Unknown
    ids are ignored.  Does nothing, apart from one SELECT, when no ruleset is active.
    """
    if cause not in ASSIGNMENT_CAUSES:
        raise ValueError(f"unknown assignment cause {cause!r}")
    ids = list(dict.fromkeys(customer_ids))
    if not ids:
        return []
    now = utcnow()
    known_run_id: int | None = None
    locked: dict[int, Mapping[str, Any]] | None
    if len(ids) == 1:
        found = await _active_rules_and_customer(session, ids[0], now)
        if found is None:
            return []
        rules, single = found
        if single.row is None:
            return []
        known_run_id = single.day_run_id
        if assignment.has_row_locks(session):
            locked = await _lock_customers(session, ids)
            labels = await current_labels(session, ids)
            decisions, segments, assigners = await _decide(session, rules, ids, now, labels, locked)
        else:
            if single.has_labels:
                labels = await current_labels(session, ids)
            else:
                labels = {ids[0]: (set(), set())}
            decisions, segments, assigners = await _decide(session, rules, ids, now, labels, {ids[0]: single.row})
    else:
        active = await active_rules(session)
        if active is None:
            return []
        rules = active
        locked = await _lock_customers(session, ids) if assignment.has_row_locks(session) else None
        labels = await current_labels(session, ids)
        decisions, segments, assigners = await _decide(session, rules, ids, now, labels, locked)
    changes: list[RealtimeChange] = []
    for decision in decisions:
        row = decision.row
        assignment_locked = bool(row["assignment_locked"])
        stored_segments, stored_tags = labels[decision.customer_id]
        wanted_segments, wanted_tags = set(decision.segments), set(decision.tags)
        change = RealtimeChange(
            customer_id=decision.customer_id,
            rule=decision.rule,
            locked=assignment_locked,
            team_before=row["team_id"],
            team_after=row["team_id"] if assignment_locked else decision.rule_team,
            manager_before=row["manager_id"],
            manager_after=decision.manager_after,
            segments_added=sorted(wanted_segments - stored_segments),
            segments_removed=sorted(stored_segments - wanted_segments),
            tags_added=sorted(wanted_tags - stored_tags),
            tags_removed=sorted(stored_tags - wanted_tags),
            rule_team=decision.rule_team,
        )
        if change.assignment_changed or change.labels_changed:
            changes.append(change)
    await _write(
        session,
        decisions,
        changes,
        assigners,
        ruleset_id=rules.ruleset_id,
        cause=cause,
        now=now,
        known_segments=segments,
        known_run_id=known_run_id,
    )
    await session.flush()
    return changes


async def reevaluate_customer(
    session: AsyncSession, customer_id: int, *, cause: str = REALTIME
) -> RealtimeChange | None:
    """Re-route one customer with the active ruleset (see the module docstring); None when nothing changed."""
    changes = await reevaluate_customers(session, [customer_id], cause=cause)
    return changes[0] if changes else None
