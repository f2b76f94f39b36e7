"""Inactive teams in a run (docs/domain.md, "Inactive teams"): a team with `active = false` takes no
customers, so a run passes over the `-> team KEY` of every rule naming it.

The rule keeps its segments and tags (those are additive, docs/routing.md "What a run decides"); only
its team action goes, so the customer's team is decided by the next team rule whose condition holds,
and with none the customer is left without a team and counted in the summary's `unmatched`.  The
team's current customers are therefore moved on by the next run (they show in its `moves`, from the
inactive team) rather than kept out of sight; the summary names the teams passed over
(`inactiveTeams`).  Reactivating the team restores its rules at the next run.

Done on the parsed rule file before it is compiled, so the Python and SQL evaluators, the summary's
rule hits and the settled-customer shortcut all see the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.dsl.ast import Rule, RuleFile, Statement
from segmenta.storage.models import Team


async def inactive_team_keys(session: AsyncSession, team_keys: Iterable[str]) -> tuple[str, ...]:
    """The keys among `team_keys` of teams that exist and are inactive, sorted."""
    wanted = sorted(set(team_keys))
    if not wanted:
        return ()
    rows = await session.execute(select(Team.key).where(Team.key.in_(wanted), Team.active.is_(False)))
    return tuple(sorted(rows.scalars()))


def passing_over(rule_file: RuleFile, inactive: Iterable[str]) -> RuleFile:
    """`rule_file` without the team actions naming an `inactive` team; a rule left with no action goes."""
    passed = set(inactive)
    if not passed:
        return rule_file
    statements: list[Statement] = []
    for statement in rule_file.statements:
        if isinstance(statement, Rule) and statement.team in passed:
            actions = tuple(action for action in statement.actions if not (action.kind == "team" and action.target in passed))
            if not actions:
                continue
            statement = Rule(
                condition=statement.condition,
                actions=actions,
                label=statement.label,
                label_span=statement.label_span,
                span=statement.span,
            )
        statements.append(statement)
    return RuleFile(statements=tuple(statements), source=rule_file.source)
