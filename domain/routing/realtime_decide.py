"""Deciding real-time routing: what the active ruleset gives each customer, and the managers of those
who need one (domain.routing.assignment's strategies, with the team's members locked on PostgreSQL)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.routing import assignment
from segmenta.domain.routing.realtime_reads import load_values, read_team, teams_and_segments_by_key
from segmenta.domain.routing.realtime_records import SegmentRow
from segmenta.domain.routing.realtime_rules import CompiledRulesetVersion
from segmenta.domain.staff.vocabulary import AUTOMATIC_STRATEGIES
from segmenta.dsl.outcome import TaskOutcome
from segmenta.storage.models import Customer
from segmenta.storage.new_customer_read import ExistingCustomer, NewCustomerRead

logger = logging.getLogger(__name__)


@dataclass
class RoutingDecision:
    customer_id: int
    row: Mapping[str, Any]
    team_key: str | None
    rule: str | None
    segments: tuple[str, ...]
    tags: tuple[str, ...]
    rule_team: int | None = None
    team_known: bool = True
    manager_after: int | None = None
    tasks: tuple[TaskOutcome, ...] = ()


_LOADS = (
    select(Customer.manager_id, func.count())
    .where(Customer.manager_id.in_(bindparam("employee_ids", expanding=True)))
    .group_by(Customer.manager_id)
)


async def _lock_team_assigners(session: AsyncSession, needing: Sequence[RoutingDecision]) -> dict[int, assignment.TeamAssigner]:
    """The assigners of the teams `needing` join, locked and with their members' loads (as
    domain.routing.assignment.load_team_assigners builds them); in two statements when it is one team."""
    team_ids = sorted({d.rule_team for d in needing if d.rule_team is not None})
    if len(team_ids) == 1:
        row_locks = assignment.has_row_locks(session)
        read = await read_team(session, needing[0].team_key, (), with_loads=not row_locks)
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
    decisions: Sequence[RoutingDecision],
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


async def decide(
    session: AsyncSession,
    rules: CompiledRulesetVersion,
    customer_ids: Sequence[int],
    as_of: datetime,
    labels: Mapping[int, tuple[set[str], set[str]]],
    rows: dict[int, Mapping[str, Any]] | None = None,
) -> tuple[list[RoutingDecision], list[SegmentRow], list[assignment.TeamAssigner]]:
    """The decisions, the stored segments any of them may join or leave (read with the teams),
    and the assigners that handed out managers."""
    rows, values = await load_values(session, customer_ids, rules, rows)
    decisions: list[RoutingDecision] = []
    for customer_id in customer_ids:
        if customer_id not in values:
            continue
        team, rule, segments, tags, tasks = rules.rules.decide(values[customer_id], as_of)
        decisions.append(RoutingDecision(customer_id, rows[customer_id], team, rule, segments, tags, tasks=tasks))
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
        read = await read_team(session, team_key, segment_keys, with_loads=not row_locks, existing=existing)
        teams = {team_key: read.team[:2]} if team_key is not None and read.team is not None else {}
        stored_segments = read.segments
        if read.team is not None:
            read_assigners = await _assigners_read(session, read, row_locks)
    else:
        teams, stored_segments = await teams_and_segments_by_key(session, team_keys, segment_keys)
    strategies: dict[int, str] = {}
    for decision in decisions:
        row = decision.row
        if decision.team_key is not None:
            found = teams.get(decision.team_key)
            if found is None:
                # Deleted or deactivated after activation: keep the assignment rather than fail the caller's write.
                logger.warning(
                    "real-time routing: team %r of the active ruleset does not exist or is inactive", decision.team_key
                )
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
