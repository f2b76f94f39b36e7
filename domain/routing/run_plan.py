"""What a run is asked to do (`RunPlan`, validated by domain.routing.runs.plan_run before the run
row exists) and how it reports its progress (`RunProgress`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from segmenta.domain.staff.vocabulary import AUTOMATIC_STRATEGIES
from segmenta.dsl.ast import RuleFile
from segmenta.dsl.sql_compiler import SqlRuleset


@dataclass(frozen=True)
class RunProgress:
    run_id: int
    step: str  # evaluate | compare | assign | write | summarise | done
    done: int
    total: int


ProgressCallback = Callable[[RunProgress], Awaitable[None] | None]


@dataclass(frozen=True)
class TeamInfo:
    id: int
    key: str
    strategy: str


@dataclass(frozen=True)
class RunPlan:
    """Everything a run needs, validated before the run row exists."""

    mode: str
    ruleset_id: int | None
    rule_file: RuleFile
    compiled: SqlRuleset
    as_of: datetime
    teams: dict[str, TeamInfo]  # by key, the teams the rules name
    segment_keys: tuple[str, ...]
    tag_keys: tuple[str, ...]
    team_rule_labels: tuple[str, ...]
    # Inactive teams the rules name, whose team actions the run passes over (inactive_teams.py).
    inactive_teams: tuple[str, ...] = ()

    @property
    def automatic_team_ids(self) -> list[int]:
        return sorted(team.id for team in self.teams.values() if team.strategy in AUTOMATIC_STRATEGIES)
