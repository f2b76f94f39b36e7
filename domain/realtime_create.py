"""Real-time routing of a customer being created (SPEC §4), decided before the customer is written.

A new customer's rule values are all known before its row exists: the validated
input, its manual tags and attributes, no purchase categories, metrics that are
all zero.  So :func:`insert_customer` (called by ``domain.customers.create_customer``)
decides the routing first and writes the customer with its team, manager and
deciding rule already set — one INSERT rather than INSERT, re-read and UPDATE —
with exactly the outcome of inserting the customer and then re-evaluating it
(``domain.realtime.reevaluate_customer``; tests/domain/test_realtime_create.py
compares the two on random customers and rulesets).

Statements, with a ruleset active (without one: 1 and the customer's INSERTs):

1. one SELECT reads whether the code is taken, the active ruleset, the day's
   realtime run and — decided with the ruleset this process used last, a guess
   the same statement checks — the chosen team with its active members (their
   loads on SQLite) and the segments the customer joins.  On PostgreSQL the team
   row and then the members' employee rows are locked here (``FOR UPDATE`` in
   CTEs, employees in id order), and only when the active ruleset is the guessed
   one, so a wrong guess never holds locks out of order.  A wrong guess (a
   process's first customer, or a ruleset activated since, by any process) costs
   one more read of the same kind, never a wrong decision;
2. PostgreSQL only: the members' loads, read after the locks were granted (a
   statement that waited for a lock still reads its own older snapshot);
3. the writes: the customer (RETURNING its row), its tags (manual and rule ones
   in one multi-row INSERT), attributes, dynamic-segment memberships, the
   change row in the day's realtime run, the history row, the round-robin
   position.  The day's run and missing dynamic segments are created first when
   needed, as in domain/realtime.py.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, Text, exists, func, insert, literal, null, select, true, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from domain import assignment, realtime
from domain.customers import MANUAL, RULE, birthday_md
from domain.errors import Conflict
from domain.metrics import rule_values
from domain.realtime import REALTIME, CompiledRules, SegmentRow
from storage.models import (
    AssignmentHistory,
    Customer,
    CustomerAttribute,
    CustomerTag,
    Employee,
    EvaluationChange,
    EvaluationRun,
    Ruleset,
    Segment,
    SegmentMember,
    Team,
    TeamMember,
    utcnow,
)

logger = logging.getLogger(__name__)

_customers = Customer.__table__
_tags = CustomerTag.__table__
_attributes = CustomerAttribute.__table__
_memberships = SegmentMember.__table__
_changes = EvaluationChange.__table__
_history = AssignmentHistory.__table__

AttributeValue = str | float


def code_conflict(code: str) -> Conflict:
    return Conflict(f"a customer with code {code!r} already exists", field="code")


# ---------------------------------------------------------------------------
# The new customer's row and the rules' decision on it.
# ---------------------------------------------------------------------------


def new_customer_row(values: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Every column of the new customer but the id: the validated values, else the column defaults."""
    row: dict[str, Any] = {}
    for column in _customers.c:
        if column.primary_key:
            continue
        if column.name in values:
            row[column.name] = values[column.name]
        elif column.default is not None and column.default.is_scalar:
            row[column.name] = column.default.arg
        else:
            row[column.name] = None
    row["created_at"] = values.get("created_at") or now
    row["updated_at"] = now
    row["birthday_md"] = birthday_md(values.get("birthday"))
    return row


@dataclass(frozen=True)
class _Plan:
    """What `rules` decide for the new customer."""

    rules: CompiledRules
    team_key: str | None
    rule: str | None
    segments: tuple[str, ...]
    tags: tuple[str, ...]


def _decide(rules: CompiledRules, values: Mapping[str, Any], now: datetime) -> _Plan:
    team_key, rule, segments, tags = rules.rules.decide(values, now)
    return _Plan(rules, team_key, rule, tuple(segments), tuple(tags))


# ---------------------------------------------------------------------------
# The reads: one UNION ALL whose arms share one column layout.
# ---------------------------------------------------------------------------

# Every arm of the read has these columns (NULL where it has nothing to say), so
# that one statement returns rows of different kinds; `what` tells them apart.
_LAYOUT: dict[str, Any] = {
    "what": String(),
    "code_taken": Boolean(),
    "ruleset_id": Integer(),
    "ruleset_version": Integer(),
    "ruleset_source": Text(),
    "day_run_id": Integer(),
    "team_id": Integer(),
    "strategy": String(),
    "position": Integer(),
    "employee_id": Integer(),
    "capacity": Integer(),
    "specialties": JSON(),
    "regions": JSON(),
    "load": Integer(),
    "segment_key": String(),
    "segment_id": Integer(),
    "segment_kind": String(),
}


def _arm(what: str, **columns: Any) -> Select[Any]:
    unknown = set(columns) - set(_LAYOUT)
    assert not unknown, unknown
    return select(
        literal(what, String()).label("what"),
        *[
            (columns[name] if name in columns else null().cast(type_)).label(name)
            for name, type_ in _LAYOUT.items()
            if name != "what"
        ],
    )


def _active_ruleset() -> Any:
    return (
        select(Ruleset.id, Ruleset.version, Ruleset.source)
        .where(Ruleset.status == "active")
        .order_by(Ruleset.id)
        .limit(1)
        .subquery("active_ruleset")
    )


def _code_taken(code: str) -> Any:
    return exists().where(_customers.c.code == code)


def _head_arms(code: str, now: datetime) -> list[Select[Any]]:
    """Whether the code is taken (always one row); the active ruleset and the day's realtime run (one row or none)."""
    active = _active_ruleset()
    day_run = (
        select(EvaluationRun.id)
        .where(
            EvaluationRun.mode == REALTIME,
            EvaluationRun.ruleset_id == active.c.id,
            EvaluationRun.as_of == realtime._day_start(now),
        )
        .order_by(EvaluationRun.id)
        .limit(1)
        .scalar_subquery()
    )
    return [
        _arm("code", code_taken=_code_taken(code)),
        _arm(
            "ruleset",
            ruleset_id=active.c.id,
            ruleset_version=active.c.version,
            ruleset_source=active.c.source,
            day_run_id=day_run,
        ).select_from(active),
    ]


def _routing_arms(plan: _Plan, *, with_loads: bool, guarded: bool) -> list[Select[Any]]:
    """The chosen team and its active members (locked where the database has row locks), and the segments joined.

    `guarded`: only when the active ruleset is the one the plan was decided with (its
    id, version and source), so that a guess that turns out wrong locks nothing.
    """
    arms: list[Select[Any]] = []
    if plan.team_key is not None:
        team_query = select(Team.id, Team.strategy, Team.round_robin_position).where(Team.key == plan.team_key)
        if guarded:
            active = _active_ruleset()
            team_query = team_query.where(
                exists()
                .select_from(active)
                .where(
                    active.c.id == plan.rules.ruleset_id,
                    active.c.version == plan.rules.version,
                    active.c.source == plan.rules.rules.source,
                )
            )
        team = team_query.cte("routed_team")
        # Only a team that assigns managers is locked and has its members read (as in
        # domain/realtime.py).  The team row first, then its members' employee rows in
        # id order: the order every assignment locks in (domain/assignment.py), so
        # routers never deadlock.  A locked row is read in its latest committed version.
        locked = (
            select(Team.id, Team.round_robin_position)
            .where(
                Team.id == select(team.c.id).scalar_subquery(),
                Team.strategy.in_(assignment.AUTOMATIC_STRATEGIES),
            )
            .with_for_update()
            .cte("locked_team")
        )
        members = (
            select(Employee.id, Employee.capacity, Employee.specialties, Employee.regions)
            .join(TeamMember, TeamMember.employee_id == Employee.id)
            .where(TeamMember.team_id == select(locked.c.id).scalar_subquery(), Employee.active.is_(True))
            .order_by(Employee.id)
            .with_for_update(of=Employee)
            .cte("routed_members")
        )
        load = (
            select(func.count()).select_from(_customers).where(_customers.c.manager_id == members.c.id).scalar_subquery()
            if with_loads
            else null().cast(Integer())
        )
        arms.append(
            _arm(
                "team",
                team_id=team.c.id,
                strategy=team.c.strategy,
                position=func.coalesce(locked.c.round_robin_position, team.c.round_robin_position),
            ).select_from(team.outerjoin(locked, true()))
        )
        arms.append(
            _arm(
                "member",
                employee_id=members.c.id,
                capacity=members.c.capacity,
                specialties=members.c.specialties,
                regions=members.c.regions,
                load=load,
            ).select_from(members)
        )
    if plan.segments:
        arms.append(
            _arm("segment", segment_key=Segment.key, segment_id=Segment.id, segment_kind=Segment.kind).where(
                Segment.key.in_(sorted(set(plan.segments)))
            )
        )
    return arms


@dataclass
class _Read:
    code_taken: bool = False
    ruleset: tuple[int, int, str] | None = None
    day_run_id: int | None = None
    team: tuple[int, str, int | None] | None = None
    members: list[tuple[int, int, int | None, Any, Any]] = field(default_factory=list)
    loads: dict[int, int] = field(default_factory=dict)
    segments: list[SegmentRow] = field(default_factory=list)


async def _read(session: AsyncSession, arms: Sequence[Select[Any]], into: _Read) -> _Read:
    statement = arms[0] if len(arms) == 1 else union_all(*arms)
    for row in (await session.execute(statement)).mappings():
        what = row["what"]
        if what == "code":
            into.code_taken = bool(row["code_taken"])
        elif what == "ruleset":
            into.ruleset = (row["ruleset_id"], row["ruleset_version"], row["ruleset_source"])
            into.day_run_id = row["day_run_id"]
        elif what == "team":
            into.team = (row["team_id"], row["strategy"], row["position"])
        elif what == "member":
            into.members.append((0, row["employee_id"], row["capacity"], row["specialties"], row["regions"]))
            if row["load"]:
                into.loads[row["employee_id"]] = row["load"]
        else:
            into.segments.append((row["segment_key"], row["segment_id"], row["segment_kind"]))
    # Members in employee-id order (the round-robin order), with the team's id.
    if into.team is not None:
        team_id = into.team[0]
        into.members = sorted(((team_id, *member[1:]) for member in into.members), key=lambda m: m[1])
    else:
        into.members = []
    return into


# ---------------------------------------------------------------------------
# The whole call.
# ---------------------------------------------------------------------------


async def insert_customer(
    session: AsyncSession,
    values: Mapping[str, Any],
    tags: Sequence[str],
    attributes: Mapping[str, AttributeValue | None],
) -> Customer:
    """Insert a validated new customer, routed by the active ruleset, in the caller's transaction.

    `values` are the customer's validated column values, `tags` its manual tags and
    `attributes` its attributes (None values are dropped).  Raises Conflict when the
    code is taken; writes nothing else then.
    """
    now = utcnow()
    row = new_customer_row(values, now)
    kept_attributes = {key: value for key, value in attributes.items() if value is not None}
    rule_input = rule_values(row, tags, kept_attributes, ())
    row_locks = assignment.has_row_locks(session)

    guess = realtime.last_used_rules()
    plan = _decide(guess, rule_input, now) if guess is not None else None
    arms = _head_arms(row["code"], now)
    if plan is not None:
        arms += _routing_arms(plan, with_loads=not row_locks, guarded=True)
    read = await _read(session, arms, _Read())
    if read.code_taken:
        raise code_conflict(row["code"])
    if read.ruleset is None:
        return await _write(session, row, tags, kept_attributes, now, routing=None)

    rules = realtime.compiled_rules(*read.ruleset)
    if plan is None or plan.rules is not rules:
        plan = _decide(rules, rule_input, now)
        routing_arms = _routing_arms(plan, with_loads=not row_locks, guarded=False)
        read.team, read.members, read.loads, read.segments = None, [], {}, []
        if routing_arms:
            await _read(session, routing_arms, read)
    if row_locks and read.members:
        read.loads = await assignment.current_loads(session, [member[1] for member in read.members])
    return await _write(session, row, tags, kept_attributes, now, routing=_route(plan, read, row))


@dataclass
class _Routing:
    plan: _Plan
    team_id: int | None
    manager_id: int | None
    team_known: bool
    day_run_id: int | None
    segments: list[SegmentRow]
    assigner: assignment.TeamAssigner | None = None
    stored_position: int | None = None

    @property
    def assignment_changed(self) -> bool:
        return self.team_id is not None or self.manager_id is not None

    @property
    def labels_changed(self) -> bool:
        return bool(self.plan.segments or self.plan.tags)


def _route(plan: _Plan, read: _Read, row: Mapping[str, Any]) -> _Routing:
    """Team and manager for the new customer, as domain/realtime.py decides them for a customer with none."""
    routing = _Routing(plan, None, None, True, read.day_run_id, read.segments)
    if plan.team_key is None:
        return routing
    if read.team is None:
        # Deleted after activation: the customer keeps what it has (nothing), as in realtime.
        logger.warning("real-time routing: team %r of the active ruleset does not exist", plan.team_key)
        routing.team_known = False
        return routing
    team_id, strategy, position = read.team
    routing.team_id = team_id
    if strategy in assignment.AUTOMATIC_STRATEGIES:
        assigner = assignment.build_assigners([read.team], read.members, read.loads)[team_id]
        routing.manager_id = assigner.assign(assignment.Candidate(0, row["industry"], row["region"]))
        routing.assigner = assigner
        # Written back only when it moved (domain.assignment.save_positions writes it always).
        routing.stored_position = position
    return routing


async def _write(
    session: AsyncSession,
    row: dict[str, Any],
    tags: Sequence[str],
    attributes: Mapping[str, AttributeValue],
    now: datetime,
    *,
    routing: _Routing | None,
) -> Customer:
    if routing is not None and routing.team_known:
        row = {**row, "team_id": routing.team_id, "manager_id": routing.manager_id, "deciding_rule": routing.plan.rule}
    record = routing is not None and (routing.assignment_changed or routing.labels_changed)
    run_id: int | None = None
    segment_ids: dict[str, int] = {}
    if routing is not None and record:
        # Both rare (the day's first change; a segment the rules name for the first time).
        run_id = await realtime.realtime_run_id(session, routing.plan.rules.ruleset_id, now, known=routing.day_run_id)
        segment_ids = await realtime._dynamic_segment_ids(session, set(routing.plan.segments), now, routing.segments)
    try:
        # ORM-enabled INSERT … RETURNING: the session gets the persistent Customer without a
        # flush.  populate_existing: an id freed by a rolled-back insert (SQLite reuses ids)
        # may still name a stale, expired object in the session; it becomes this customer.
        customer = (
            await session.scalars(
                insert(Customer).values(**row).returning(Customer),
                execution_options={"populate_existing": True},
            )
        ).one()
    except IntegrityError as error:
        if is_code_conflict(error):
            raise code_conflict(row["code"]) from error
        raise
    customer_id = customer.id
    tag_rows = [{"customer_id": customer_id, "tag": tag, "source": MANUAL} for tag in tags]
    if routing is not None:
        tag_rows += [{"customer_id": customer_id, "tag": tag, "source": RULE} for tag in dict.fromkeys(routing.plan.tags)]
    if tag_rows:
        await session.execute(insert(_tags), tag_rows)
    if attributes:
        await session.execute(
            insert(_attributes),
            [
                {
                    "customer_id": customer_id,
                    "key": key,
                    "text_value": value if isinstance(value, str) else None,
                    "number_value": None if isinstance(value, str) else value,
                }
                for key, value in attributes.items()
            ],
        )
    if routing is not None and record:
        await _record(session, routing, customer_id, run_id, segment_ids, now)
    return customer


async def _record(
    session: AsyncSession,
    routing: _Routing,
    customer_id: int,
    run_id: int | None,
    segment_ids: Mapping[str, int],
    now: datetime,
) -> None:
    plan = routing.plan
    joined = sorted(set(plan.segments))
    member_rows = [
        {"segment_id": segment_ids[key], "customer_id": customer_id, "added_at": now}
        for key in joined
        if key in segment_ids
    ]
    if member_rows:
        await session.execute(insert(_memberships), member_rows)
    team_after = routing.team_id if routing.team_known else None
    manager_after = routing.manager_id if routing.team_known else None
    await session.execute(
        insert(_changes),
        {
            "run_id": run_id,
            "customer_id": customer_id,
            "team_before_id": None,
            "team_after_id": team_after,
            "manager_before_id": None,
            "manager_after_id": manager_after,
            "segments_added": joined,
            "segments_removed": [],
            "tags_added": sorted(set(plan.tags)),
            "tags_removed": [],
            "deciding_rule": plan.rule,
            "locked": False,
        },
    )
    if team_after is not None or manager_after is not None:
        # Through the session: domain/events.py announces the row after the commit.
        await session.execute(
            insert(_history),
            [
                {
                    "customer_id": customer_id,
                    "team_before_id": None,
                    "team_after_id": team_after,
                    "manager_before_id": None,
                    "manager_after_id": manager_after,
                    "cause": REALTIME,
                    "run_id": run_id,
                    "rule": plan.rule,
                    "changed_at": now,
                }
            ],
        )
    assigner = routing.assigner
    if (
        assigner is not None
        and assigner.strategy == "round_robin"
        and assigner.assigned
        and assigner.position != routing.stored_position
    ):
        await session.execute(
            update(Team).where(Team.id == assigner.team_id).values(round_robin_position=assigner.position)
        )


def is_code_conflict(error: IntegrityError) -> bool:
    """Whether the error is the unique code of customers (not some other constraint)."""
    message = str(error.orig)
    return "customers.code" in message or "uq_customers_code" in message
