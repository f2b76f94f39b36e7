"""Real-time routing of a customer being created, decided before the customer is written
(docs/routing.md, "Creating a customer: routing decided before the INSERT").

A new customer's rule values are all known before its row exists: the validated
input, its manual tags and attributes, no purchase categories, metrics that are
all zero.  So :func:`insert_customer` (called by ``domain.customers.profiles.create_customer``)
decides the routing first and writes the customer with its team, manager and
deciding rule already set — one INSERT rather than INSERT, re-read and UPDATE —
with exactly the outcome of inserting the customer and then re-evaluating it
(``domain.routing.realtime.reevaluate_customer``; tests/domain/test_realtime_create.py
compares the two on random customers and rulesets).

Statements, with a ruleset active (without one: 1 and the customer's INSERTs):

1. one SELECT reads whether the code is taken, the active ruleset, the day's
   realtime run and — decided with the ruleset this process used last, a guess
   the same statement checks — the chosen team with its active members and the
   segments the customer joins.  A wrong guess (a process's first customer, or a
   ruleset activated since, by any process) costs one more read of the same kind,
   never a wrong decision;
2. the writes: the customer (RETURNING its row), its tags (manual and rule ones
   together), attributes, dynamic-segment memberships, the change row in the day's
   realtime run, the history row, the round-robin position (when it moved).  The
   day's run and missing dynamic segments are created first when needed, as in
   domain/routing/realtime.py.

The manager: on SQLite the read brings the members' loads (those that can matter:
all under least_loaded, those of members with a capacity under round_robin; a writer
holds the whole database) and domain.routing.assignment picks in Python; the writes are the
customer's INSERT and one row of the routing view (storage/sqlite_writes.py).  On PostgreSQL the read locks the team row and then its
members' employee rows (in id order, as every assignment does, and only when the
active ruleset is the guessed one, so a wrong guess never holds locks out of order),
and the writes are one statement that also picks the manager
(storage.new_customer_write.ManagerPick): its loads are counted after the locks
were granted — a statement that waited for a lock still reads its own older
snapshot, so the read could not count them — without a statement in between.

The statements themselves are in storage/new_customer_read.py and new_customer_write.py.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from segmenta.domain import events
from segmenta.domain.customers.metrics import rule_values
from segmenta.domain.customers.records import MANUAL, RULE, birthday_md
from segmenta.domain.errors import Conflict
from segmenta.domain.routing import assignment, realtime_rules
from segmenta.domain.routing.realtime_records import REALTIME, day_start, dynamic_segment_ids, realtime_run_id
from segmenta.domain.routing.realtime_rules import CompiledRulesetVersion
from segmenta.domain.staff.vocabulary import AUTOMATIC_STRATEGIES, EVERY_LOAD_STRATEGIES
from segmenta.dsl.outcome import TaskOutcome
from segmenta.storage.models import Customer, utcnow
from segmenta.storage.new_customer_read import Guess, NewCustomerRead, read_new_customer
from segmenta.storage.new_customer_write import ManagerPick, NewCustomerWrites, history_values, insert_new_customer
from segmenta.storage.rule_tasks import EvaluatedTasks, write_realtime_tasks

logger = logging.getLogger(__name__)

_customers = Customer.__table__

AttributeValue = str | float


def code_conflict(code: str) -> Conflict:
    return Conflict(f"a customer with code {code!r} already exists", field="code")


def new_customer_row(values: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Every column of the new customer but the id: the validated values, else the column defaults."""
    row: dict[str, Any] = {}
    for column in _customers.c:
        if column.primary_key:
            continue
        if column.name in values:
            row[column.name] = values[column.name]
        elif isinstance(column.default, ScalarElementColumnDefault):  # the class whose is_scalar is true
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

    rules: CompiledRulesetVersion
    team_key: str | None
    rule: str | None
    segments: tuple[str, ...]
    tags: tuple[str, ...]
    tasks: tuple[TaskOutcome, ...] = ()


def _decide(rules: CompiledRulesetVersion, values: Mapping[str, Any], now: datetime) -> _Plan:
    team_key, rule, segments, tags, tasks = rules.rules.decide(values, now)
    return _Plan(rules, team_key, rule, tuple(segments), tuple(tags), tasks)


async def _read(
    session: AsyncSession, plan: _Plan | None, *, head: tuple[str, datetime] | None, with_loads: bool
) -> NewCustomerRead:
    """The head (when given: code, day) and, for `plan`, its team and segments; guarded when with the head."""
    guess = None
    if plan is not None and head is not None:
        guess = Guess(plan.rules.ruleset_id, plan.rules.version, plan.rules.rules.source)
    return await read_new_customer(
        session,
        head=head,
        team_key=plan.team_key if plan is not None else None,
        segment_keys=plan.segments if plan is not None else (),
        guess=guess,
        with_loads=with_loads,
        realtime_mode=REALTIME,
        automatic_strategies=AUTOMATIC_STRATEGIES,
        every_load_strategies=EVERY_LOAD_STRATEGIES,
    )


async def insert_customer(
    session: AsyncSession,
    values: Mapping[str, Any],
    tags: Sequence[str],
    attributes: Mapping[str, AttributeValue | None],
) -> Customer:
    """Insert a validated new customer, routed by the active ruleset, in the caller's transaction.

    `values` are the customer's validated column values, `tags` its manual tags and
    `attributes` its attributes (None values are dropped).  Raises Conflict when the
    code is taken; writes nothing then.
    """
    now = utcnow()
    row = new_customer_row(values, now)
    kept_attributes = {key: value for key, value in attributes.items() if value is not None}
    rule_input = rule_values(row, tags, kept_attributes, ())
    row_locks = assignment.has_row_locks(session)

    guess = realtime_rules.last_used_rules()
    plan = _decide(guess, rule_input, now) if guess is not None else None
    read = await _read(session, plan, head=(row["code"], day_start(now)), with_loads=not row_locks)
    if read.code_taken:
        raise code_conflict(row["code"])
    routing: _Routing | None = None
    if read.ruleset is None:
        realtime_rules.saw_no_active_ruleset()  # the next read carries no guessed team and segments
    else:
        rules = realtime_rules.compiled_rules(*read.ruleset)
        if plan is None or plan.rules is not rules:
            plan = _decide(rules, rule_input, now)
            day_run_id = read.day_run_id
            read = NewCustomerRead(ruleset=read.ruleset, day_run_id=day_run_id)
            if plan.team_key is not None or plan.segments:
                read = await _read(session, plan, head=None, with_loads=not row_locks)
                read.day_run_id = day_run_id
        routing = _route(plan, read, row, pick_in_write=row_locks)
    writes = NewCustomerWrites(
        row=row,
        tags=[(tag, MANUAL) for tag in tags],
        attributes=[
            (key, value if isinstance(value, str) else None, None if isinstance(value, str) else value)
            for key, value in kept_attributes.items()
        ],
    )
    if routing is not None:
        await _add_routing(session, writes, routing, now)
    try:
        customer = await insert_new_customer(
            session, writes, every_load_strategies=EVERY_LOAD_STRATEGIES
        )
    except IntegrityError as error:
        if is_code_conflict(error):
            raise code_conflict(row["code"]) from error
        raise
    if routing is not None and routing.plan.rules.rules.task_kinds:
        # A new customer has no trigger and no task yet: each task its rules give is created.
        evaluated = EvaluatedTasks(customer.id, routing.plan.tasks, customer.manager_id, customer.team_id)
        await write_realtime_tasks(
            session, [evaluated], routing.plan.rules.rules.task_kinds, ruleset_id=routing.plan.rules.ruleset_id, now=now
        )
    history = history_values(writes, customer)
    if history is not None:
        events.record_assignment_changes(session, [history])  # published after the commit
    return customer


@dataclass
class _Routing:
    plan: _Plan
    team_id: int | None
    manager_id: int | None
    team_known: bool
    day_run_id: int | None
    segments: list[tuple[str, int, str]]
    assigner: assignment.TeamAssigner | None = None
    stored_position: int | None = None
    pick: ManagerPick | None = None

    @property
    def assignment_changed(self) -> bool:
        # A manager only ever comes with a team (and a picked one with the team it was picked in).
        return self.team_id is not None

    @property
    def labels_changed(self) -> bool:
        return bool(self.plan.segments or self.plan.tags)


def _route(plan: _Plan, read: NewCustomerRead, row: Mapping[str, Any], *, pick_in_write: bool) -> _Routing:
    """Team and manager for the new customer, as domain/routing/realtime.py decides them for a customer with none.

    `pick_in_write` (PostgreSQL): the manager is left to the write (ManagerPick), which
    counts the loads after the read's locks; here only who is preferred is worked out.
    """
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
    if strategy in AUTOMATIC_STRATEGIES:
        assigner = assignment.build_assigners([read.team], read.members, read.loads)[team_id]
        candidate = assignment.Candidate(0, row["industry"], row["region"])
        if pick_in_write:
            routing.pick = ManagerPick(
                team_id=team_id,
                strategy=strategy,
                employee_ids=[member.employee_id for member in assigner.members],
                capacities=[member.capacity for member in assigner.members],
                preferred=[member.prefers(candidate.industry, candidate.region) for member in assigner.members],
                position=assigner.position,
            )
        else:
            routing.manager_id = assigner.assign(candidate)
            routing.assigner = assigner
            routing.stored_position = position
    return routing


async def _add_routing(session: AsyncSession, writes: NewCustomerWrites, routing: _Routing, now: datetime) -> None:
    """The routing's part of the writes: assignment on the row, rule tags, memberships, change, history, position."""
    plan = routing.plan
    # Routed once, as domain.routing.realtime raises the version of every customer it re-evaluates.
    writes.row["routing_version"] = 1
    if routing.team_known:
        writes.row.update(team_id=routing.team_id, manager_id=routing.manager_id, deciding_rule=plan.rule)
    writes.tags += [(tag, RULE) for tag in dict.fromkeys(plan.tags)]
    if not (routing.assignment_changed or routing.labels_changed):
        return
    # Both rare: the day's first change creates its realtime run, a segment the rules
    # name for the first time is created (as domain/routing/realtime.py does).
    run_id = await realtime_run_id(session, plan.rules.ruleset_id, now, known=routing.day_run_id)
    joined = sorted(set(plan.segments))
    segment_ids = await dynamic_segment_ids(session, set(joined), now, routing.segments)
    writes.segment_ids = [segment_ids[key] for key in joined if key in segment_ids]
    writes.added_at = now
    writes.pick = routing.pick
    team_after = routing.team_id if routing.team_known else None
    manager_after = routing.manager_id if routing.team_known else None  # or whom `pick` picks
    writes.change = {
        "run_id": run_id,
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
    }
    if team_after is not None:  # a manager only ever comes with a team
        writes.history = {
            "team_before_id": None,
            "team_after_id": team_after,
            "manager_before_id": None,
            "manager_after_id": manager_after,
            "cause": REALTIME,
            "run_id": run_id,
            "rule": plan.rule,
            "changed_at": now,
        }
    assigner = routing.assigner
    # Stored only when it moved (domain.routing.assignment.save_positions stores it after any assignment).
    position = assigner.position_to_store if assigner is not None else None
    if assigner is not None and position is not None and position != routing.stored_position:
        writes.position = (assigner.team_id, position)


def is_code_conflict(error: IntegrityError) -> bool:
    """Whether the error is the unique code of customers (not some other constraint)."""
    message = str(error.orig)
    return "customers.code" in message or "uq_customers_code" in message
