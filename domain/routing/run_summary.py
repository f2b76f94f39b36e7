"""The summary of a run (docs/routing.md, 'Runs'): counts per team, rule, segment and tag, the
customers left without a manager and the moves between teams, from the work tables of its
evaluation (storage.run_evaluation)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.routing.run_plan import RunPlan
from segmenta.storage import run_evaluation, run_work_tables
from segmenta.storage.models import Team


async def summarise(
    session: AsyncSession, tables: run_work_tables.WorkTables, plan: RunPlan, census: run_evaluation.Census
) -> dict[str, Any]:
    """Settled customers' figures come from the census, the unsettled ones' from the subjects."""
    groups = await run_evaluation.outcome_groups(session, tables, plan.automatic_team_ids) if census.unsettled else []
    settled_changed = await run_evaluation.settled_label_changes(session, tables)
    key_by_id = {team.id: team.key for team in plan.teams.values()}
    # Teams the rules do not name can still appear: locked customers' and movers' old teams.
    other_ids = sorted(
        {team for group in groups for team in (group.team_before, group.rule_team) if team is not None} - set(key_by_id)
    )
    if other_ids:
        rows = await session.execute(select(Team.id, Team.key).where(Team.id.in_(other_ids)))
        key_by_id.update({team_id: key for team_id, key in rows.all()})

    def key(team_id: int | None) -> str | None:
        return None if team_id is None else key_by_id.get(team_id, f"#{team_id}")

    team_counts: Counter[str] = Counter()
    rule_hits: Counter[str] = Counter()
    unassigned: Counter[str] = Counter()
    moves: Counter[tuple[str | None, str | None]] = Counter()
    for decision, count in census.by_decision.items():
        rule = tables.rule_by_decision[decision]
        if rule is not None:
            rule_hits[rule] += count
    for decision, count in census.settled_by_decision.items():
        team = tables.team_by_decision[decision]  # a settled customer is in the decision's team already
        if team is not None:
            team_counts[key(team) or ""] += count
    for group in groups:
        final_team = group.team_before if group.locked else group.rule_team
        if final_team is not None:
            team_counts[key(final_team) or ""] += group.count
        if group.unassigned and group.rule_team is not None:
            unassigned[key(group.rule_team) or ""] += group.unassigned
        if not group.locked and group.team_before != group.rule_team:
            moves[(key(group.team_before), key(group.rule_team))] += group.count
    return {
        "evaluated": census.evaluated,
        "changed": sum(group.changed for group in groups) + settled_changed,
        "unmatched": census.by_decision.get(0, 0),
        "locked": sum(group.count for group in groups if group.locked),
        "team_counts": dict(sorted(team_counts.items())),
        "rule_hits": {label: rule_hits.get(label, 0) for label in plan.team_rule_labels},
        "segment_counts": {k: census.wanted.get((run_work_tables.SEGMENT, k), 0) for k in plan.segment_keys},
        "tag_counts": {k: census.wanted.get((run_work_tables.TAG, k), 0) for k in plan.tag_keys},
        "unassigned_by_team": dict(sorted(unassigned.items())),
        "moves": [
            {"from": before, "to": after, "count": count}
            for (before, after), count in sorted(moves.items(), key=lambda item: (-item[1], item[0][0] or "", item[0][1] or ""))
        ],
    }
