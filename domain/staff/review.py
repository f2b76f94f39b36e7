"""The monthly review: each team's league table and the level the promotion policy suggests.

Nothing is promoted here: the review suggests, a person confirms with `updateEmployee` (or leaves it).
The policy (docs/performance.md, "Periodic review") is three settings:

* SEGMENTA_REVIEW_ATTAINMENT — the attainment, in percent, an employee must reach in each month (100);
* SEGMENTA_REVIEW_MONTHS — how many months in a row, ending with the reviewed one (3);
* SEGMENTA_REVIEW_SATISFACTION — the average survey score over those months it needs, 1 to 5 (4).

An active employee meeting all three is suggested the next level (junior → senior → lead →
supervisor; a supervisor stays).  The figures of every member of every team come from one
statement (storage/performance_sql.py): the reviewed month, each month of the window, and the window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain import validation as v
from segmenta.domain.errors import NotFound, UserError
from segmenta.domain.settings import number_setting
from segmenta.domain.staff.performance import Performance, Period, parse_month, performance_of
from segmenta.domain.staff.vocabulary import EMPLOYEE_LEVELS
from segmenta.storage.models import Employee, Team, TeamMember
from segmenta.storage.performance_sql import EMPLOYEE, TEAM

REVIEW_ROLES = ("admin", "manager")
FORBIDDEN = "forbidden"
ATTAINMENT_SETTING = "SEGMENTA_REVIEW_ATTAINMENT"
MONTHS_SETTING = "SEGMENTA_REVIEW_MONTHS"
SATISFACTION_SETTING = "SEGMENTA_REVIEW_SATISFACTION"


@dataclass(frozen=True)
class ReviewPolicy:
    attainment_percent: float = 100.0
    months: int = 3
    satisfaction: float = 4.0

    def describe(self) -> str:
        return (
            f"attainment ≥ {self.attainment_percent:g}% in each of the last {self.months} months and average "
            f"satisfaction ≥ {self.satisfaction:g} over them → next level"
        )


def review_policy(environ: Mapping[str, str] | None = None) -> ReviewPolicy:
    """The policy from the environment; a bad setting raises SettingError naming it."""
    return ReviewPolicy(
        attainment_percent=number_setting(ATTAINMENT_SETTING, 100.0, minimum=0, maximum=10_000, unit="percent", environ=environ),
        months=number_setting(MONTHS_SETTING, 3, minimum=1, maximum=12, whole=True, unit="months", environ=environ),
        satisfaction=number_setting(SATISFACTION_SETTING, 4.0, minimum=1, maximum=5, unit="points", environ=environ),
    )


@dataclass(frozen=True)
class ReviewRow:
    rank: int
    employee: Employee
    performance: Performance
    suggested_level: str | None
    reason: str


@dataclass(frozen=True)
class TeamReview:
    team: Team
    performance: Performance | None  # the team's own figures for the month
    rows: list[ReviewRow]


def ensure_may_review(acting_role: str | None) -> None:
    if acting_role not in REVIEW_ROLES:
        raise UserError(f"forbidden: the performance review needs one of the roles {', '.join(REVIEW_ROLES)}", code=FORBIDDEN)


def next_level(level: str) -> str | None:
    position = EMPLOYEE_LEVELS.index(level) if level in EMPLOYEE_LEVELS else len(EMPLOYEE_LEVELS) - 1
    return EMPLOYEE_LEVELS[position + 1] if position + 1 < len(EMPLOYEE_LEVELS) else None


def suggestion(
    employee: Employee, months: list[Performance], window: Performance, policy: ReviewPolicy
) -> tuple[str | None, str]:
    """(suggested level or None, why) for one employee, from each month of the window and the window."""
    if not employee.active:
        return None, "inactive"
    target_level = next_level(employee.level)
    if target_level is None:
        return None, f"{employee.level} is the highest level"
    for performance in months:
        attainment = performance.attainment
        if attainment is None:
            return None, f"no target in {performance.period.first}"
        if attainment * 100 < policy.attainment_percent:
            return None, f"attainment {attainment * 100:.0f}% in {performance.period.first} (below {policy.attainment_percent:g}%)"
    satisfaction = window.average_satisfaction
    if satisfaction is None:
        return None, f"no survey over {window.period.first}..{window.period.last}"
    if satisfaction < policy.satisfaction:
        return None, f"satisfaction {satisfaction:.2f} over the window (below {policy.satisfaction:g})"
    return target_level, (
        f"attainment ≥ {policy.attainment_percent:g}% in each of {window.period.first}..{window.period.last} "
        f"and satisfaction {satisfaction:.2f} ≥ {policy.satisfaction:g}"
    )


def _ranking_key(row: tuple[Employee, Performance]) -> tuple[int, float, object, str, int]:
    employee, performance = row
    attainment = performance.attainment
    return (attainment is None, -(attainment or 0.0), -performance.revenue, employee.name, employee.id)


async def performance_review(
    session: AsyncSession,
    acting_role: str | None,
    month: object,
    now: datetime,
    *,
    team_key: str | None = None,
    policy: ReviewPolicy | None = None,
) -> list[TeamReview]:
    """Each team's members ranked by the month's attainment (then revenue), with the policy's suggestion.

    Teams by key; an employee in two teams appears in both.  Four statements whatever the size."""
    ensure_may_review(acting_role)
    reviewed = parse_month(month, "month")
    policy = policy or review_policy()
    teams_query = select(Team).order_by(Team.key)
    if team_key is not None:
        key = v.lookup_text(team_key, "team", max_length=v.column_length(Team, "key"))
        teams_query = teams_query.where(Team.key == key)
    teams = list(await session.scalars(teams_query))
    if team_key is not None and not teams:
        raise NotFound("team", team_key, field="team")
    memberships = (
        await session.execute(
            select(TeamMember.team_id, Employee)
            .join(Employee, Employee.id == TeamMember.employee_id)
            .where(TeamMember.team_id.in_([team.id for team in teams]))
        )
    ).all()
    employees = {employee.id: employee for _, employee in memberships}
    first = reviewed.shifted(1 - policy.months)
    periods = [Period(reviewed.shifted(offset), reviewed.shifted(offset)) for offset in range(1 - policy.months, 1)]
    periods.append(Period(first, reviewed))
    figures = await performance_of(session, EMPLOYEE, list(employees), periods, now)
    team_figures = await performance_of(session, TEAM, [team.id for team in teams], [Period(reviewed, reviewed)], now)
    window_index = len(periods) - 1
    reviews: list[TeamReview] = []
    for team in teams:
        members = [employee for team_id, employee in memberships if team_id == team.id]
        ranked = sorted(((member, figures[(member.id, window_index - 1)]) for member in members), key=_ranking_key)
        rows = []
        for rank, (employee, performance) in enumerate(ranked, start=1):
            months = [figures[(employee.id, index)] for index in range(window_index)]
            level, reason = suggestion(employee, months, figures[(employee.id, window_index)], policy)
            rows.append(ReviewRow(rank, employee, performance, level, reason))
        reviews.append(TeamReview(team, team_figures.get((team.id, 0)), rows))
    return reviews

