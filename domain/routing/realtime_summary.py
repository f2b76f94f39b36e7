"""Summaries of realtime runs, computed from their change rows when read.

A realtime run collects one UTC day's real-time re-evaluations of one ruleset
(domain.routing.realtime).  Its row is written once: a counter on it would make every
concurrent customer write queue on that one row.  Its summary is therefore derived
from the change rows whenever it is asked for, in the shape an apply run stores
(domain.routing.runs._summary), with these meanings:

* ``evaluated`` and ``changed`` — customers with at least one change that day
  (evaluations that changed nothing leave no trace, so nothing else can be counted);
* ``locked`` — of them, customers whose assignment is locked;
* ``unmatched`` — change events after which no team rule matched the customer;
* ``rule_hits`` — change events per deciding team rule;
* ``moves`` — change events that moved a customer between teams (locked ones excluded);
* ``unassigned_by_team`` — change events that left a customer without a manager in a team
  that assigns managers (nobody had room);
* ``team_counts``, ``segment_counts``, ``tag_counts`` — empty: they are totals over every
  customer, which a realtime run does not evaluate (the teams, segments and tags
  themselves carry their current counts).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, not_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from segmenta.domain.staff.vocabulary import AUTOMATIC_STRATEGIES
from segmenta.storage.models import EvaluationChange, Team


def _empty() -> dict[str, Any]:
    return {
        "evaluated": 0,
        "changed": 0,
        "unmatched": 0,
        "locked": 0,
        "team_counts": {},
        "rule_hits": {},
        "segment_counts": {},
        "tag_counts": {},
        "unassigned_by_team": {},
        "moves": [],
    }


async def realtime_summaries(session: AsyncSession, run_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The summary of each given realtime run (three grouped queries for all of them)."""
    summaries = {run_id: _empty() for run_id in run_ids}
    if not summaries:
        return summaries
    change = EvaluationChange
    of_runs = change.run_id.in_(sorted(summaries))

    customers = await session.execute(
        select(
            change.run_id,
            func.count(func.distinct(change.customer_id)),
            func.count(func.distinct(change.customer_id)).filter(change.locked.is_(True)),
            func.count().filter(change.deciding_rule.is_(None)),
        )
        .where(of_runs)
        .group_by(change.run_id)
    )
    for run_id, changed, locked, unmatched in customers.all():
        summary = summaries[run_id]
        summary.update(evaluated=int(changed), changed=int(changed), locked=int(locked), unmatched=int(unmatched))

    rules = await session.execute(
        select(change.run_id, change.deciding_rule, func.count())
        .where(of_runs, change.deciding_rule.is_not(None))
        .group_by(change.run_id, change.deciding_rule)
    )
    for run_id, rule, count in rules.all():
        summaries[run_id]["rule_hits"][rule] = int(count)

    before, after = aliased(Team), aliased(Team)
    moved = and_(not_(change.locked), change.team_before_id.is_distinct_from(change.team_after_id))
    # A manual team is left without a manager by design, not for want of capacity.
    no_manager = and_(not_(change.locked), after.strategy.in_(AUTOMATIC_STRATEGIES), change.manager_after_id.is_(None))
    teams = await session.execute(
        select(
            change.run_id,
            before.key,
            after.key,
            func.count().filter(moved),
            func.count().filter(no_manager),
        )
        .outerjoin(before, before.id == change.team_before_id)
        .outerjoin(after, after.id == change.team_after_id)
        .where(of_runs, moved | no_manager)
        .group_by(change.run_id, before.key, after.key)
    )
    moves: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for run_id, before_key, after_key, moves_count, unassigned in teams.all():
        if moves_count:
            moves[run_id].append({"from": before_key, "to": after_key, "count": int(moves_count)})
        if unassigned and after_key is not None:
            by_team = summaries[run_id]["unassigned_by_team"]
            by_team[after_key] = by_team.get(after_key, 0) + int(unassigned)
    for run_id, run_moves in moves.items():
        run_moves.sort(key=lambda move: (-move["count"], move["from"] or "", move["to"] or ""))
        summaries[run_id]["moves"] = run_moves
    for summary in summaries.values():
        summary["rule_hits"] = dict(sorted(summary["rule_hits"].items()))
        summary["unassigned_by_team"] = dict(sorted(summary["unassigned_by_team"].items()))
    return summaries
