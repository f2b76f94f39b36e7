"""The performance statement equals a plain Python computation of docs/performance.md's definitions,
over random customers, assignment histories, purchases, feedback, interactions and targets whose
times cluster on month boundaries and on the instants of the changes (SQLite and PostgreSQL)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain.customers.metrics import recompute_metrics
from segmenta.domain.staff.performance import Month, Period, performance_of
from segmenta.storage.engine import session_factory
from segmenta.storage.models import (
    AssignmentHistory,
    Customer,
    Employee,
    Feedback,
    Interaction,
    PerformanceTarget,
    Purchase,
    Task,
    Team,
    TeamMember,
)
from segmenta.storage.performance_sql import EMPLOYEE, TEAM

NOW = datetime(2026, 12, 20)
# Instants on and around the boundaries of October to December 2026 and of the trailing year.
INSTANTS = sorted(
    {
        moment + delta
        for moment in (
            datetime(2025, 11, 1), datetime(2025, 12, 1), datetime(2026, 10, 1), datetime(2026, 10, 15, 12),
            datetime(2026, 11, 1), datetime(2026, 11, 15, 12), datetime(2026, 12, 1), datetime(2026, 12, 10),
        )
        for delta in (timedelta(0), timedelta(seconds=-1), timedelta(seconds=1))
    }
)
MONTHS = ("2026-10", "2026-11", "2026-12")
OWNERS = 2  # employees 0 and 1, teams 0 and 1; None: nobody
CUSTOMERS = 4

instants = st.sampled_from(INSTANTS)
owners = st.one_of(st.none(), st.integers(0, OWNERS - 1))
amounts = st.integers(0, 100_000).map(lambda cents: Decimal(cents).scaleb(-2))


@dataclass
class World:
    created: list[datetime]
    current: list[tuple[int | None, int | None]]  # (manager, team) on the customer row
    history: list[tuple[int, datetime, int | None, int | None, int | None, int | None]]  # customer, at, mb, ma, tb, ta
    purchases: list[tuple[int, datetime, Decimal]]
    feedback: list[tuple[int, str, int | None, datetime, datetime | None]]
    interactions: list[tuple[int, datetime]]
    monthly: list[tuple[Decimal | None, Decimal | None]]  # (employee's, team's) monthly target per owner
    targets: list[tuple[str, int, str, Decimal]]  # kind, owner, month, amount
    members: set[tuple[int, int]]  # (team, employee)
    tasks: list[tuple[int | None, int | None, datetime, str, int | None]]  # employee, team queue, due, status, hours to completion


def _feedback() -> st.SearchStrategy[tuple[int, str, int | None, datetime, datetime | None]]:
    def build(customer: int, kind: str, score: int, created: datetime, wait: int | None) -> Any:
        resolved = None if wait is None or kind != "complaint" else created + timedelta(hours=wait)
        return (customer, kind, None if kind == "complaint" else (score % 5 + 1 if kind == "survey" else score), created, resolved)

    return st.builds(
        build, st.integers(0, CUSTOMERS - 1), st.sampled_from(["survey", "nps", "complaint"]), st.integers(0, 10),
        instants, st.one_of(st.none(), st.sampled_from([0, 1, 5, 24, 24 * 20, 24 * 31])),
    )


worlds = st.builds(
    World,
    created=st.lists(instants, min_size=CUSTOMERS, max_size=CUSTOMERS),
    current=st.lists(st.tuples(owners, owners), min_size=CUSTOMERS, max_size=CUSTOMERS),
    history=st.lists(st.tuples(st.integers(0, CUSTOMERS - 1), instants, owners, owners, owners, owners), max_size=8),
    purchases=st.lists(st.tuples(st.integers(0, CUSTOMERS - 1), instants, amounts), max_size=12),
    feedback=st.lists(_feedback(), max_size=10),
    interactions=st.lists(st.tuples(st.integers(0, CUSTOMERS - 1), instants), max_size=6),
    monthly=st.lists(st.tuples(st.one_of(st.none(), amounts), st.one_of(st.none(), amounts)), min_size=OWNERS, max_size=OWNERS),
    targets=st.lists(st.tuples(st.sampled_from([EMPLOYEE, TEAM]), st.integers(0, OWNERS - 1), st.sampled_from(MONTHS), amounts), max_size=4),
    members=st.sets(st.tuples(st.integers(0, OWNERS - 1), st.integers(0, OWNERS - 1))),
    tasks=st.lists(
        st.one_of(
            st.tuples(st.integers(0, OWNERS - 1), st.none(), instants, st.sampled_from(["open", "done", "cancelled"]), st.sampled_from([-24, -1, 0, 1, 24 * 40])),
            st.tuples(st.none(), st.integers(0, OWNERS - 1), instants, st.sampled_from(["open", "done", "cancelled"]), st.sampled_from([-24, 0, 1])),
        ),
        max_size=8,
    ),
)


# -- the definitions, in plain Python ------------------------------------------------------------

def changes(world: World, customer: int, kind: str) -> list[tuple[datetime, int | None]]:
    """The customer's changes in order (time, then the order written): (when, owner before it)."""
    column = 0 if kind == EMPLOYEE else 1
    rows = sorted((row[1], index, row) for index, row in enumerate(world.history) if row[0] == customer)
    return [(at, row[2 + 2 * column]) for at, _, row in rows]


def current(world: World, customer: int, kind: str) -> int | None:
    return world.current[customer][0 if kind == EMPLOYEE else 1]


def owner_at(world: World, customer: int, kind: str, moment: datetime) -> int | None:
    """The "before" of the first change after the moment, else the owner on the customer's row."""
    for at, before in changes(world, customer, kind):
        if at > moment:
            return before
    return current(world, customer, kind)


def managed_just_before(world: World, customer: int, kind: str, moment: datetime) -> int | None:
    """Who managed the customer at the last instant before `moment` (None: not created yet, or nobody)."""
    if not world.created[customer] < moment:
        return None
    for at, before in changes(world, customer, kind):
        if at >= moment:
            return before
    return current(world, customer, kind)


def expected(world: World, kind: str, owner: int, period: Period) -> dict[str, Any]:
    start, end = period.start, period.end
    trailing = period.bounds().trailing_start

    def mine(customer: int, moment: datetime) -> bool:
        return start <= moment < end and owner_at(world, customer, kind, moment) == owner

    sales = [amount for customer, at, amount in world.purchases if mine(customer, at)]
    at_start = {c for c in range(CUSTOMERS) if managed_just_before(world, c, kind, start) == owner}
    at_end = {c for c in range(CUSTOMERS) if managed_just_before(world, c, kind, end) == owner}
    bought = {c for c, at, _ in world.purchases if trailing <= at < end}
    surveys = [score for c, k, score, at, _ in world.feedback if k == "survey" and mine(c, at)]
    nps = [score for c, k, score, at, _ in world.feedback if k == "nps" and mine(c, at)]
    waits = [
        (resolved - at).total_seconds() for c, k, _, at, resolved in world.feedback
        if k == "complaint" and resolved is not None and mine(c, resolved)
    ]
    column = 0 if kind == EMPLOYEE else 1
    monthly = world.monthly[owner][column]
    month_targets: list[Decimal | None] = []
    for offset in range(period.months):
        month = str(period.first.shifted(offset))
        set_here = [amount for k, o, m, amount in world.targets if (k, o, m) == (kind, owner, month)]
        month_targets.append(set_here[-1] if set_here else monthly)
    present = [target for target in month_targets if target is not None]
    if kind == EMPLOYEE:
        tasks = [task for task in world.tasks if task[0] == owner]
    else:
        tasks = [task for task in world.tasks if task[1] == owner or (task[0] is not None and (owner, task[0]) in world.members)]
    due = [task for task in tasks if start <= task[2] < end and task[3] != "cancelled"]

    def on_time(task: Any) -> bool:
        return task[3] == "done" and task[2] + timedelta(hours=task[4]) <= task[2]

    return {
        "revenue": sum(sales, Decimal("0.00")),
        "purchases": len(sales),
        "target": sum(present, Decimal("0.00")) if present else None,
        "customers_at_start": len(at_start),
        "customers_at_end": len(at_end),
        "customers_won": len(at_end - at_start),
        "customers_lost": len(at_start - at_end),
        "customers_retained": len(at_start & at_end & bought),
        "survey_count": len(surveys),
        "survey_sum": float(sum(surveys)),
        "nps_count": len(nps),
        "nps_promoters": sum(1 for score in nps if score is not None and score >= 9),
        "nps_detractors": sum(1 for score in nps if score is not None and score <= 6),
        "complaints_received": sum(1 for c, k, _, at, _ in world.feedback if k == "complaint" and mine(c, at)),
        "complaints_resolved": len(waits),
        "median_resolution_seconds": statistics.median(waits) if waits else None,
        "interactions": sum(1 for c, at in world.interactions if mine(c, at)),
        "tasks_due": len(due),
        "tasks_done_on_time": sum(1 for task in due if on_time(task)),
        "tasks_overdue": sum(1 for task in due if task[2] < NOW and not on_time(task)),
    }


# -- the same world in the database ---------------------------------------------------------------


async def _write(session: Any, world: World) -> tuple[list[int], list[int]]:
    employees = [Employee(name=f"E{i}", email=f"e{i}@example.com", monthly_target=world.monthly[i][0]) for i in range(OWNERS)]
    teams = [Team(key=f"t{i}", name=f"T{i}", monthly_target=world.monthly[i][1]) for i in range(OWNERS)]
    session.add_all([*employees, *teams])
    await session.flush()
    e = [row.id for row in employees]
    t = [row.id for row in teams]

    def employee(index: int | None) -> int | None:
        return None if index is None else e[index]

    def team(index: int | None) -> int | None:
        return None if index is None else t[index]

    customers = [
        Customer(code=f"c{i}", name="c", created_at=world.created[i], manager_id=employee(world.current[i][0]), team_id=team(world.current[i][1]))
        for i in range(CUSTOMERS)
    ]
    session.add_all(customers)
    await session.flush()
    c = [row.id for row in customers]
    # Inserted in list order: ties in changed_at are ordered by id, as the Python spans order them.
    for customer, at, mb, ma, tb, ta in world.history:
        await session.execute(
            insert(AssignmentHistory.__table__).values(
                customer_id=c[customer], changed_at=at, cause="manual",
                manager_before_id=employee(mb), manager_after_id=employee(ma), team_before_id=team(tb), team_after_id=team(ta),
            )
        )
    if world.purchases:
        await session.execute(
            insert(Purchase.__table__),
            [{"customer_id": c[who], "purchased_at": at, "amount": amount} for who, at, amount in world.purchases],
        )
    if world.feedback:
        await session.execute(
            insert(Feedback.__table__),
            [
                {"customer_id": c[who], "kind": kind, "score": score, "created_at": at, "resolved_at": resolved, "status": "open"}
                for who, kind, score, at, resolved in world.feedback
            ],
        )
    if world.interactions:
        await session.execute(
            insert(Interaction.__table__), [{"customer_id": c[who], "kind": "call", "occurred_at": at} for who, at in world.interactions]
        )
    session.add_all(TeamMember(team_id=t[team_index], employee_id=e[employee_index]) for team_index, employee_index in world.members)
    session.add_all(
        Task(
            customer_id=c[0], employee_id=employee(who), team_id=team(queue), kind=f"k{index}", title="t", due_at=due,
            status=status, completed_at=None if status == "open" else due + timedelta(hours=hours),
        )
        for index, (who, queue, due, status, hours) in enumerate(world.tasks)
    )
    latest: dict[tuple[str, int, str], Decimal] = {}
    for kind, owner, month, amount in world.targets:
        latest[(kind, owner, month)] = amount
    for (kind, owner, month), amount in latest.items():
        session.add(
            PerformanceTarget(
                employee_id=e[owner] if kind == EMPLOYEE else None, team_id=t[owner] if kind == TEAM else None,
                month=month, amount=amount,
            )
        )
    await session.flush()
    await recompute_metrics(session)
    return e, t


PERIODS = [
    Period(Month(2026, 10), Month(2026, 10)),
    Period(Month(2026, 11), Month(2026, 11)),
    Period(Month(2026, 10), Month(2026, 12)),
]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(world=worlds)
async def test_sql_figures_equal_the_python_definitions(engine: AsyncEngine, world: World) -> None:
    async with session_factory(engine)() as session:
        try:
            employee_ids, team_ids = await _write(session, world)
            for kind, ids in ((EMPLOYEE, employee_ids), (TEAM, team_ids)):
                found = await performance_of(session, kind, ids, PERIODS, NOW)
                for owner, owner_id in enumerate(ids):
                    for index, period in enumerate(PERIODS):
                        got = found[(owner_id, index)]
                        want = expected(world, kind, owner, period)
                        for name, value in want.items():
                            actual = getattr(got, name)
                            if isinstance(value, float):
                                assert actual == pytest.approx(value, abs=0.01), (kind, owner, str(period.first), name)
                            else:
                                assert actual == value, (kind, owner, str(period.first), str(period.last), name, actual, value)
        finally:
            await session.rollback()
