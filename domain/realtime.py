"""Real-time routing (SPEC §4): re-evaluate customers against the active ruleset
inside the transaction that changed them.

Creating or changing a customer, or recording a purchase, interaction or feedback,
calls :func:`reevaluate_customer` at the end of the domain service (domain/customers.py,
domain/activity.py), so the GraphQL API, the CSV import and scripts all get it.

What happens, with the same semantics as an apply run (domain/runs.py):

* no active ruleset → nothing (one cheap SELECT);
* the rules are evaluated with the Python compiler on the customer's rule values,
  read in the same transaction (domain.metrics.rule_values), at ``as_of`` = now;
* team: the first matching team rule's team (no team rule matches → no team);
  a new team gets a manager by its strategy (domain.assignment); staying in the
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
from typing import Any

from sqlalchemy import DateTime, Integer, Row, bindparam, delete, func, insert, literal, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from domain import assignment
from domain.customers import MANUAL, RULE, chunked, get_customer_attributes, get_customer_categories, get_customer_tags
from domain.metrics import rule_values
from dsl import ast
from dsl.fields import ATTRIBUTE_PREFIX
from dsl.ruleset import Ruleset as CompiledRuleset
from dsl.ruleset import compile_rules
from storage.models import (
    AssignmentHistory,
    Customer,
    CustomerTag,
    EvaluationChange,
    EvaluationRun,
    Ruleset,
    Segment,
    SegmentMember,
    Team,
    utcnow,
)

logger = logging.getLogger(__name__)

REALTIME = "realtime"
CAUSES = ("run", "realtime", "manual")
# Compiled rulesets kept per process; a server only ever uses the active one and
# maybe a few being explained, so a handful is plenty.
CACHE_SIZE = 8

_customers = Customer.__table__
_members = SegmentMember.__table__
_tags = CustomerTag.__table__


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
        into.add(condition.field.name)


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
    rules: CompiledRuleset
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
# with *before* the statement that reads the active ruleset (domain/realtime_create.py),
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
            EvaluationRun.ruleset_id == Ruleset.id,
            EvaluationRun.as_of == bindparam("day", type_=DateTime()),
        )
        .order_by(EvaluationRun.id)
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(
            Ruleset.id.label("active_ruleset_id"),
            Ruleset.version.label("active_ruleset_version"),
            Ruleset.source.label("active_ruleset_source"),
            day_run.label("day_run_id"),
            (dynamic_memberships + rule_tags).label("label_count"),
            _customers,
        )
        .select_from(Ruleset)
        .outerjoin(_customers, _customers.c.id == customer_id)
        .where(Ruleset.status == "active")
        .order_by(Ruleset.id)
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
            _active_rules_and_customer_statement(), {"customer_id": customer_id, "day": _day_start(now)}
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


async def active_rules(session: AsyncSession) -> CompiledRules | None:
    """The active ruleset, compiled (cached); None when no ruleset is active."""
    row = (
        await session.execute(
            select(Ruleset.id, Ruleset.version, Ruleset.source)
            .where(Ruleset.status == "active")
            .order_by(Ruleset.id)
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    return compiled_rules(row.id, row.version, row.source)


# ---------------------------------------------------------------------------
# Reading the customers and their current rule outputs.
# ---------------------------------------------------------------------------


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
            for row in await session.execute(select(_customers).where(_customers.c.id.in_(chunk))):
                rows[row.id] = row._mapping
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


async def current_labels(
    session: AsyncSession, customer_ids: Sequence[int]
) -> dict[int, tuple[set[str], set[str]]]:
    """(dynamic segment keys, rule tags) per customer, as stored now; one query per chunk."""
    result: dict[int, tuple[set[str], set[str]]] = {customer_id: (set(), set()) for customer_id in customer_ids}
    for chunk in chunked(list(customer_ids)):
        segments = (
            select(SegmentMember.customer_id, literal("segment").label("kind"), Segment.key.label("key"))
            .join(Segment, Segment.id == SegmentMember.segment_id)
            .where(Segment.kind == "dynamic", SegmentMember.customer_id.in_(chunk))
        )
        tags = select(CustomerTag.customer_id, literal("tag").label("kind"), CustomerTag.tag.label("key")).where(
            CustomerTag.source == RULE, CustomerTag.customer_id.in_(chunk)
        )
        for customer_id, kind, key in await session.execute(union_all(segments, tags)):
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


async def _teams_and_segments_by_key(
    session: AsyncSession, team_keys: Iterable[str], segment_keys: Iterable[str]
) -> tuple[dict[str, tuple[int, str]], list[SegmentRow]]:
    """Teams (id, strategy) and segments (key, id, kind) by key, in one statement."""
    teams_wanted, segments_wanted = sorted(set(team_keys)), sorted(set(segment_keys))
    parts = []
    if teams_wanted:
        parts.append(
            select(literal("team").label("what"), Team.key, Team.id, Team.strategy.label("detail")).where(
                Team.key.in_(teams_wanted)
            )
        )
    if segments_wanted:
        parts.append(
            select(literal("segment").label("what"), Segment.key, Segment.id, Segment.kind.label("detail")).where(
                Segment.key.in_(segments_wanted)
            )
        )
    if not parts:
        return {}, []
    teams: dict[str, tuple[int, str]] = {}
    segments: list[SegmentRow] = []
    for what, key, found_id, detail in await session.execute(parts[0] if len(parts) == 1 else union_all(*parts)):
        if what == "team":
            teams[key] = (found_id, detail)
        else:
            segments.append((key, found_id, detail))
    return teams, segments


async def _assign_new_managers(
    session: AsyncSession, decisions: Sequence[_Decision], strategies: Mapping[int, str]
) -> None:
    """Managers for the unlocked customers who need one (new team, or same team without one)."""
    needing = [
        d
        for d in decisions
        if not d.row["assignment_locked"]
        and d.team_known
        and d.rule_team is not None
        and strategies.get(d.rule_team) in assignment.AUTOMATIC_STRATEGIES
        and d.manager_after is None
    ]
    if not needing:
        return
    assigners = await assignment.load_team_assigners(session, sorted({d.rule_team for d in needing if d.rule_team}))
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
    await assignment.save_positions(session, assigners.values())


async def _decide(
    session: AsyncSession,
    rules: CompiledRules,
    customer_ids: Sequence[int],
    as_of: datetime,
    labels: Mapping[int, tuple[set[str], set[str]]],
    rows: dict[int, Mapping[str, Any]] | None = None,
) -> tuple[list[_Decision], list[SegmentRow]]:
    """The decisions, and the stored segments any of them may join or leave (read with the teams)."""
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
    teams, segments = await _teams_and_segments_by_key(
        session, (d.team_key for d in decisions if d.team_key is not None), segment_keys
    )
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
    await _assign_new_managers(session, decisions, strategies)
    return decisions, segments


# ---------------------------------------------------------------------------
# Writing.
# ---------------------------------------------------------------------------


def _day_start(moment: datetime) -> datetime:
    return datetime.combine(moment.date(), time.min)


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
    day = _day_start(now)
    found = await session.scalar(
        select(EvaluationRun.id)
        .where(EvaluationRun.mode == REALTIME, EvaluationRun.ruleset_id == ruleset_id, EvaluationRun.as_of == day)
        .order_by(EvaluationRun.id)
        .limit(1)
    )
    if found is not None:
        return found
    run = EvaluationRun(
        ruleset_id=ruleset_id, mode=REALTIME, status="succeeded", as_of=day, started_at=now, summary={}
    )
    session.add(run)
    await session.flush()
    return run.id


async def _dynamic_segment_ids(
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
    for key in missing:
        segment = Segment(key=key, name=key, description="maintained by the active ruleset", kind="dynamic", created_at=now)
        session.add(segment)
        await session.flush()
        ids[key] = segment.id
    return ids


async def _write_labels(
    session: AsyncSession, changes: Sequence[RealtimeChange], now: datetime, known_segments: Sequence[SegmentRow]
) -> None:
    removed_segments = [(c.customer_id, key) for c in changes for key in c.segments_removed]
    added_segments = [(c.customer_id, key) for c in changes for key in c.segments_added]
    segment_ids = await _dynamic_segment_ids(
        session, {key for _, key in removed_segments + added_segments}, now, known_segments
    )
    removed_rows = [(customer, segment_ids[key]) for customer, key in removed_segments if key in segment_ids]
    if removed_rows:
        await session.execute(
            delete(_members).where(
                _members.c.customer_id == bindparam("member_customer"),
                _members.c.segment_id == bindparam("member_segment"),
            ),
            [{"member_customer": customer, "member_segment": segment} for customer, segment in removed_rows],
        )
    added_rows = [
        {"segment_id": segment_ids[key], "customer_id": customer, "added_at": now}
        for customer, key in added_segments
        if key in segment_ids
    ]
    if added_rows:
        await session.execute(insert(_members), added_rows)
    removed_tags = [(c.customer_id, tag) for c in changes for tag in c.tags_removed]
    if removed_tags:
        await session.execute(
            delete(_tags).where(
                _tags.c.customer_id == bindparam("tag_customer"),
                _tags.c.tag == bindparam("tag_name"),
                _tags.c.source == RULE,
            ),
            [{"tag_customer": customer, "tag_name": tag} for customer, tag in removed_tags],
        )
    added_tags = [{"customer_id": c.customer_id, "tag": tag, "source": RULE} for c in changes for tag in c.tags_added]
    if added_tags:
        await session.execute(insert(_tags), added_tags)


async def _write_customers(session: AsyncSession, decisions: Sequence[_Decision], now: datetime) -> None:
    """New team, manager and deciding rule onto the unlocked customers whose values differ."""
    updates = []
    for decision in decisions:
        row = decision.row
        if row["assignment_locked"] or not decision.team_known:
            continue
        if (row["team_id"], row["manager_id"], row["deciding_rule"]) != (
            decision.rule_team,
            decision.manager_after,
            decision.rule,
        ):
            updates.append(decision)
    if not updates:
        return
    await session.execute(
        update(_customers)
        .where(_customers.c.id == bindparam("target_id"))
        .values(
            team_id=bindparam("new_team"),
            manager_id=bindparam("new_manager"),
            deciding_rule=bindparam("new_rule"),
            updated_at=bindparam("new_updated_at"),
        ),
        [
            {
                "target_id": d.customer_id,
                "new_team": d.rule_team,
                "new_manager": d.manager_after,
                "new_rule": d.rule,
                "new_updated_at": now,
            }
            for d in updates
        ],
    )
    # Loaded Customer objects (the one a mutation returns) must show the new assignment.
    identity_map = session.sync_session.identity_map
    for decision in updates:
        loaded = identity_map.get(identity_key(Customer, decision.customer_id))
        if loaded is not None:
            set_committed_value(loaded, "team_id", decision.rule_team)
            set_committed_value(loaded, "manager_id", decision.manager_after)
            set_committed_value(loaded, "deciding_rule", decision.rule)
            set_committed_value(loaded, "updated_at", now)


async def _record(
    session: AsyncSession,
    changes: Sequence[RealtimeChange],
    ruleset_id: int,
    cause: str,
    now: datetime,
    known_run_id: int | None = None,
) -> None:
    run_id = await realtime_run_id(session, ruleset_id, now, known=known_run_id)
    for change in changes:
        change.run_id = run_id
    await session.execute(
        insert(EvaluationChange.__table__),
        [
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
        ],
    )
    moved = [c for c in changes if c.assignment_changed]
    if moved:
        await session.execute(
            insert(AssignmentHistory.__table__),
            [
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
                for c in moved
            ],
        )


async def reevaluate_customers(
    session: AsyncSession, customer_ids: Collection[int], *, cause: str = REALTIME
) -> list[RealtimeChange]:
    """Re-route the given customers with the active ruleset, in the caller's transaction.

    Returns what changed (customers with nothing to change are left out).  Unknown
    ids are ignored.  Does nothing, apart from one SELECT, when no ruleset is active.
    """
    if cause not in CAUSES:
        raise ValueError(f"unknown assignment cause {cause!r}")
    ids = list(dict.fromkeys(customer_ids))
    if not ids:
        return []
    now = utcnow()
    known_run_id: int | None = None
    if len(ids) == 1:
        found = await _active_rules_and_customer(session, ids[0], now)
        if found is None:
            return []
        rules, single = found
        if single.row is None:
            return []
        known_run_id = single.day_run_id
        if single.has_labels:
            labels = await current_labels(session, ids)
        else:
            labels = {ids[0]: (set(), set())}
        decisions, segments = await _decide(session, rules, ids, now, labels, {ids[0]: single.row})
    else:
        rules = await active_rules(session)
        if rules is None:
            return []
        labels = await current_labels(session, ids)
        decisions, segments = await _decide(session, rules, ids, now, labels)
    changes: list[RealtimeChange] = []
    for decision in decisions:
        row = decision.row
        locked = bool(row["assignment_locked"])
        stored_segments, stored_tags = labels[decision.customer_id]
        wanted_segments, wanted_tags = set(decision.segments), set(decision.tags)
        change = RealtimeChange(
            customer_id=decision.customer_id,
            rule=decision.rule,
            locked=locked,
            team_before=row["team_id"],
            team_after=row["team_id"] if locked else decision.rule_team,
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
    await _write_customers(session, decisions, now)
    if changes:
        await _write_labels(session, changes, now, segments)
        await _record(session, changes, rules.ruleset_id, cause, now, known_run_id)
    await session.flush()
    return changes


async def reevaluate_customer(
    session: AsyncSession, customer_id: int, *, cause: str = REALTIME
) -> RealtimeChange | None:
    """Re-route one customer with the active ruleset (see the module docstring); None when nothing changed."""
    changes = await reevaluate_customers(session, [customer_id], cause=cause)
    return changes[0] if changes else None
