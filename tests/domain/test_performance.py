"""domain.staff.performance: every figure over a small fixed dataset, worked out by hand
(tests/domain/performance_data.py), on SQLite and PostgreSQL; periods; targets; the review policy."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.errors import UserError
from segmenta.domain.settings import SettingError
from segmenta.domain.staff.performance import (
    Month,
    Period,
    may_read,
    parse_month,
    performance_of,
    resolve_period,
    series_periods,
)
from segmenta.domain.staff.review import ReviewPolicy, next_level, performance_review, review_policy
from segmenta.domain.staff.targets import set_target
from segmenta.storage.models import Employee, PerformanceTarget, TeamMember
from segmenta.storage.performance_sql import (
    CUSTOMERS,
    EMPLOYEE,
    FEEDBACK,
    GROUPS,
    INTERACTIONS,
    RESOLUTIONS,
    SALES,
    TASKS,
    TEAM,
    statement_text,
)
from tests.domain import performance_data
from tests.domain.helpers import database_snapshot
from tests.domain.performance_data import NOVEMBER, NOW

NOV = Period(Month(2026, 11), Month(2026, 11))
RATIOS = ("attainment", "retention_rate", "average_satisfaction", "nps", "median_resolution_hours", "task_completion_rate")


def _figures(performance: object) -> dict[str, object]:
    return {name: getattr(performance, name) for name in NOVEMBER["A"]}


async def test_every_figure_of_november_is_the_hand_computed_one(session: AsyncSession) -> None:
    ids = await performance_data.build(session)
    employees = await performance_of(session, EMPLOYEE, [ids["A"], ids["B"]], [NOV], NOW)
    teams = await performance_of(session, TEAM, [ids["T1"], ids["T2"]], [NOV], NOW)
    found = {
        "A": employees[(ids["A"], 0)], "B": employees[(ids["B"], 0)],
        "T1": teams[(ids["T1"], 0)], "T2": teams[(ids["T2"], 0)],
    }
    for owner, expected in NOVEMBER.items():
        got = _figures(found[owner])
        for name, value in expected.items():
            if name in RATIOS and value is not None:
                assert got[name] == pytest.approx(value), (owner, name)
            else:
                assert got[name] == value, (owner, name, got[name])
    # The mid-month move: c2's 50.00 before the change is A's, its 70.00 at the instant and 30.00 after are B's.
    assert found["A"].revenue + found["B"].revenue == Decimal("660.00")


async def test_a_range_adds_months_and_targets(session: AsyncSession) -> None:
    ids = await performance_data.build(session)
    october_to_november = resolve_period(None, "2026-10", "2026-11", NOW)
    found = await performance_of(session, EMPLOYEE, [ids["A"], ids["B"]], [october_to_november], NOW)
    a, b = found[(ids["A"], 0)], found[(ids["B"], 0)]
    # c1's purchase at 2026-10-31 23:59:59 joins; October's target is A's monthly target, November's the one set.
    assert (a.revenue, a.target) == (Decimal("650.00"), Decimal("1500.00"))
    # B has no monthly target: October's 200.00 set, November nothing.
    assert (b.revenue, b.target) == (Decimal("110.00"), Decimal("200.00"))
    assert (a.customers_at_start, a.customers_at_end) == (4, 3)


async def test_a_series_is_one_statement_of_single_months(session: AsyncSession) -> None:
    ids = await performance_data.build(session)
    periods = series_periods("2026-12", 3, NOW)
    assert [str(period.first) for period in periods] == ["2026-10", "2026-11", "2026-12"]
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    sync_engine = session.get_bind()
    event.listen(sync_engine, "before_cursor_execute", count)
    try:
        found = await performance_of(session, EMPLOYEE, [ids["A"], ids["B"], 10**6], periods, NOW)
    finally:
        event.remove(sync_engine, "before_cursor_execute", count)
    assert len(statements) == 1
    assert [found[(ids["A"], index)].revenue for index in range(3)] == [
        Decimal("100.00"), Decimal("550.00"), Decimal("400.00"),
    ]
    # An unknown owner has no figures; nothing is left out for the others.
    assert (10**6, 0) not in found and len(found) == 6


def test_months_and_periods_are_utc_calendar_months() -> None:
    assert parse_month("2026-02", "month") == Month(2026, 2)
    period = resolve_period("2026-12", None, None, NOW)
    assert (period.start, period.end) == (datetime(2026, 12, 1), datetime(2027, 1, 1))
    assert period.bounds().trailing_start == datetime(2026, 1, 1)
    assert resolve_period(None, None, None, datetime(2026, 3, 31, 23, 59)).first == Month(2026, 3)
    assert resolve_period(None, "2025-11", "2026-02", NOW).months == 4


@pytest.mark.parametrize(
    ("month", "start", "end", "field", "code"),
    [
        ("2026-13", None, None, "month", "invalid_month"),
        ("2026-1", None, None, "month", "invalid_month"),
        (" 2026-01", None, None, "month", "invalid_month"),
        ("2026-01", "2026-01", None, "month", "invalid"),
        (None, "2026-01", None, "to", "required"),
        (None, None, "2026-01", "from", "required"),
        (None, "2026-03", "2026-01", "to", "out_of_range"),
        (None, "2000-01", "2020-01", "to", "out_of_range"),
        (None, "x" * 10_000, "2026-01", "from", "invalid_month"),
    ],
)
def test_bad_periods_are_located_errors(month: str | None, start: str | None, end: str | None, field: str, code: str) -> None:
    with pytest.raises(UserError) as raised:
        resolve_period(month, start, end, NOW)
    assert (raised.value.field, raised.value.code) == (field, code)
    assert len(raised.value.message) < 200


def test_series_bounds() -> None:
    assert len(series_periods(None, 12, NOW)) == 12
    for months in (0, 25, True):
        with pytest.raises(UserError):
            series_periods(None, months, NOW)  # type: ignore[arg-type]


def test_who_may_read() -> None:
    for role in ("admin", "manager", "viewer"):
        assert may_read(role, None, TEAM, 3)
    assert may_read("agent", 7, EMPLOYEE, 7)
    assert not may_read("agent", 7, EMPLOYEE, 8)
    assert not may_read("agent", 7, TEAM, 7)
    assert not may_read(None, None, EMPLOYEE, 7)


async def test_set_target_overrides_one_month_and_null_removes_it(session: AsyncSession) -> None:
    ids = await performance_data.build(session)
    done = await set_target(session, "manager", employee_id=ids["A"], month="2026-12", amount=Decimal("1234.56"))
    assert (done.amount, done.monthly_target) == (Decimal("1234.56"), Decimal("1000.00"))
    await set_target(session, "admin", employee_id=ids["A"], month="2026-12", amount=Decimal("1500"))
    rows = list(await session.scalars(select(PerformanceTarget).where(PerformanceTarget.month == "2026-12")))
    assert [(row.employee_id, row.amount) for row in rows] == [(ids["A"], Decimal("1500.00"))]
    december = Period(Month(2026, 12), Month(2026, 12))
    assert (await performance_of(session, EMPLOYEE, [ids["A"]], [december], NOW))[(ids["A"], 0)].target == Decimal("1500.00")
    await set_target(session, "admin", employee_id=ids["A"], month="2026-12", amount=None)
    assert (await performance_of(session, EMPLOYEE, [ids["A"]], [december], NOW))[(ids["A"], 0)].target == Decimal("1000.00")
    await set_target(session, "admin", team_id=ids["T2"], month="2026-11", amount=Decimal("0.10"))
    found = await performance_of(session, TEAM, [ids["T2"]], [NOV], NOW)
    assert found[(ids["T2"], 0)].target == Decimal("0.10")
    assert found[(ids["T2"], 0)].attainment == pytest.approx(1100.0)


@pytest.mark.parametrize(
    ("role", "arguments", "field", "code"),
    [
        ("agent", {"employee": True, "month": "2026-12", "amount": Decimal(1)}, None, "forbidden"),
        ("viewer", {"employee": True, "month": "2026-12", "amount": Decimal(1)}, None, "forbidden"),
        (None, {"employee": True, "month": "2026-12", "amount": Decimal(1)}, None, "forbidden"),
        ("admin", {"month": "2026-12", "amount": Decimal(1)}, "employeeId", "invalid"),
        ("admin", {"employee": True, "team": True, "month": "2026-12", "amount": Decimal(1)}, "employeeId", "invalid"),
        ("admin", {"employee": True, "month": "12/2026", "amount": Decimal(1)}, "month", "invalid_month"),
        ("admin", {"employee": True, "month": "2026-12", "amount": Decimal("-1")}, "amount", "out_of_range"),
        ("admin", {"employee": True, "month": "2026-12", "amount": Decimal("0.001")}, "amount", "out_of_range"),
        ("admin", {"employee": True, "month": "2026-12", "amount": Decimal("1e16")}, "amount", "out_of_range"),
        ("admin", {"employee": 10**6, "month": "2026-12", "amount": Decimal(1)}, "employeeId", "not_found"),
        ("admin", {"team": 10**6, "month": "2026-12", "amount": Decimal(1)}, "teamId", "not_found"),
    ],
)
async def test_set_target_refuses_and_writes_nothing(
    session: AsyncSession, role: str | None, arguments: dict[str, object], field: str | None, code: str
) -> None:
    ids = await performance_data.build(session)
    before = await database_snapshot(session)
    employee = arguments.get("employee")
    team = arguments.get("team")
    with pytest.raises(UserError) as raised:
        await set_target(
            session,
            role,
            employee_id=ids["A"] if employee is True else employee,  # type: ignore[arg-type]
            team_id=ids["T1"] if team is True else team,  # type: ignore[arg-type]
            month=arguments["month"],
            amount=arguments["amount"],
        )
    assert (raised.value.field, raised.value.code) == (field, code)
    assert await database_snapshot(session) == before


async def test_review_ranks_each_team_and_suggests_by_the_policy(session: AsyncSession) -> None:
    ids = await performance_data.build(session)
    lenient = ReviewPolicy(attainment_percent=100, months=1, satisfaction=3.5)
    reviews = await performance_review(session, "manager", "2026-11", NOW, policy=lenient)
    assert [(review.team.key, review.rows) for review in reviews] == [("t1", []), ("t2", [])]  # no members yet
    session.add_all([TeamMember(team_id=ids["T1"], employee_id=ids["A"]), TeamMember(team_id=ids["T1"], employee_id=ids["B"])])
    await session.flush()
    reviews = await performance_review(session, "manager", "2026-11", NOW, policy=lenient, team_key="t1")
    [t1] = reviews
    assert t1.performance is not None and t1.performance.revenue == Decimal("550.00")
    # A: attainment 110 % and satisfaction 3.5 → senior; B has no target, ranked after.
    assert [(row.rank, row.employee.email, row.suggested_level) for row in t1.rows] == [
        (1, "a@example.com", "senior"), (2, "b@example.com", None),
    ]
    assert "no target in 2026-11" in t1.rows[1].reason
    strict = ReviewPolicy(attainment_percent=100, months=2, satisfaction=4)
    [t1] = await performance_review(session, "admin", "2026-11", NOW, policy=strict, team_key="t1")
    # October: 100.00 of 1000.00, 10 %.
    assert t1.rows[0].suggested_level is None and "attainment 10% in 2026-10" in t1.rows[0].reason
    # Nothing was promoted.
    levels = set(await session.scalars(select(Employee.level)))
    assert levels == {"junior"}


async def test_review_refuses_agents_viewers_and_bad_input(session: AsyncSession) -> None:
    await performance_data.build(session)
    for role in ("agent", "viewer", None):
        with pytest.raises(UserError) as raised:
            await performance_review(session, role, "2026-11", NOW)
        assert raised.value.code == "forbidden"
    with pytest.raises(UserError) as raised:
        await performance_review(session, "admin", "2026-11", NOW, team_key="nope")
    assert (raised.value.field, raised.value.code) == ("team", "not_found")
    with pytest.raises(UserError) as raised:
        await performance_review(session, "admin", "November", NOW)
    assert raised.value.field == "month"


def test_policy_settings() -> None:
    assert review_policy({}) == ReviewPolicy(100.0, 3, 4.0)
    assert review_policy({"SEGMENTA_REVIEW_ATTAINMENT": "90", "SEGMENTA_REVIEW_MONTHS": "6", "SEGMENTA_REVIEW_SATISFACTION": "4.5"}) == ReviewPolicy(90.0, 6, 4.5)
    for name, value in (("SEGMENTA_REVIEW_MONTHS", "0"), ("SEGMENTA_REVIEW_SATISFACTION", "6"), ("SEGMENTA_REVIEW_ATTAINMENT", "nan")):
        with pytest.raises(SettingError) as raised:
            review_policy({name: value})
        assert raised.value.field == name
    assert [next_level(level) for level in ("junior", "senior", "lead", "supervisor")] == ["senior", "lead", "supervisor", None]


@pytest.mark.parametrize("group", GROUPS)
async def test_each_group_alone_gives_its_figures_and_only_its_parts(session: AsyncSession, group: str) -> None:
    ids = await performance_data.build(session)
    owners = [ids["A"], ids["B"]]
    every = await performance_of(session, EMPLOYEE, owners, [NOV], NOW)
    alone = await performance_of(session, EMPLOYEE, owners, [NOV], NOW, groups=[group])
    for key in every:
        assert alone[key].target == every[key].target
        for name in GROUP_FIGURES[group]:
            assert getattr(alone[key], name) == getattr(every[key], name), (group, name)
    text = statement_text(EMPLOYEE, "sqlite", 1, [group])
    for other, marker in PART_MARKERS.items():
        assert (marker in text) == (other == group), (group, other)


GROUP_FIGURES = {
    SALES: ("revenue", "purchases", "attainment"),
    CUSTOMERS: ("customers_at_start", "customers_at_end", "customers_won", "customers_lost", "customers_retained"),
    FEEDBACK: ("survey_count", "survey_sum", "nps_count", "nps_promoters", "nps_detractors", "complaints_received"),
    RESOLUTIONS: ("complaints_resolved", "median_resolution_seconds"),
    INTERACTIONS: ("interactions",),
    TASKS: ("tasks_due", "tasks_done_on_time", "tasks_overdue"),
}
PART_MARKERS = {
    SALES: "'purchase'",
    CUSTOMERS: "moved AS",
    FEEDBACK: "f.kind IN ('survey', 'nps', 'complaint')",
    RESOLUTIONS: "ranked_resolutions AS",
    INTERACTIONS: "JOIN interactions i",
    TASKS: "follow_ups AS",
}
