"""The demo's past: an assignment history that reaches back in time, and targets per month.

The demo routes its customers once, today (cli `demo`: seed, then apply the sample rules), so the
assignment history would say every customer got its manager today, and every past month's
performance (docs/performance.md) would be empty.  `backdate_demo_history` tells a plausible story
instead, set-based and deterministic: each customer has had its team since it was created, and about
one in eight long-standing customers had another member of its team as manager until a day in the
last ten months (some mid-month), so the league table and the series show both.  Run it right after
the demo's first apply, in its own transaction; it changes only history rows, then adds the demo's
per-month targets (sized on that history's revenue, so attainment says something).
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.staff.performance import SERIES_MONTHS, Month, performance_of, series_periods
from segmenta.storage.models import AssignmentHistory, Customer, Employee, PerformanceTarget, TeamMember
from segmenta.storage.performance_sql import EMPLOYEE

_history = AssignmentHistory.__table__


async def backdate_demo_history(session: AsyncSession, as_of: datetime, seed: int = 42) -> int:
    """Move the demo's first assignments to each customer's creation and add earlier managers to some
    customers; returns how many customers got an earlier manager."""
    created = select(Customer.created_at).where(Customer.id == _history.c.customer_id).scalar_subquery()
    await session.execute(
        update(_history).where(_history.c.manager_before_id.is_(None), _history.c.team_before_id.is_(None))
        .values(changed_at=created)
    )
    members: dict[int, list[int]] = defaultdict(list)
    for team_id, employee_id in (await session.execute(
        select(TeamMember.team_id, TeamMember.employee_id).order_by(TeamMember.team_id, TeamMember.employee_id)
    )).all():
        members[team_id].append(employee_id)
    rows = (await session.execute(
        select(Customer.id, Customer.team_id, Customer.manager_id, Customer.created_at)
        .where(Customer.manager_id.is_not(None), Customer.team_id.is_not(None))
        .order_by(Customer.id)
    )).all()
    rng = random.Random(seed)
    earliest = as_of - timedelta(days=300)
    changes: list[dict[str, Any]] = []
    earlier: list[dict[str, Any]] = []
    for customer_id, customer_team, manager_id, created_at in rows:
        others = [member for member in members.get(int(customer_team or 0), []) if member != manager_id]
        if not others or rng.random() >= 0.125 or created_at > earliest - timedelta(days=30):
            continue
        former = rng.choice(others)
        moment = earliest + timedelta(seconds=rng.randrange(int((as_of - timedelta(days=10) - earliest).total_seconds())))
        earlier.append({"customer": customer_id, "former": former})
        changes.append(
            {
                "customer_id": customer_id,
                "team_before_id": customer_team,
                "team_after_id": customer_team,
                "manager_before_id": former,
                "manager_after_id": manager_id,
                "cause": "manual",
                "changed_at": moment,
            }
        )
    if earlier:
        await session.execute(
            update(_history)
            .where(_history.c.customer_id == bindparam("customer"), _history.c.manager_before_id.is_(None))
            .values(manager_after_id=bindparam("former")),
            earlier,
        )
        await session.execute(insert(_history), changes)
    await insert_demo_targets(session, as_of, seed)
    return len(changes)


async def insert_demo_targets(session: AsyncSession, as_of: datetime, seed: int = 42) -> int:
    """Per-month targets of the demo, set after its history (`backdate_demo_history`): three employees in
    four have a target of their own for each of the last twelve months and the next one, their average
    monthly revenue over the year rounded to the thousand, times 0.85 to 1.2 by month, so attainment
    goes either side of 100 % (the fourth keeps its monthly_target)."""
    employee_ids = list(await session.scalars(select(Employee.id).order_by(Employee.id)))
    current = Month.of(as_of)
    periods = series_periods(str(current.shifted(-1)), SERIES_MONTHS, as_of)
    found = await performance_of(session, EMPLOYEE, employee_ids, periods, as_of)
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for position, employee_id in enumerate(employee_ids):
        if position % 4 == 3:
            continue
        revenue = sum((found[(employee_id, index)].revenue for index in range(len(periods)) if (employee_id, index) in found), Decimal(0))
        base = (revenue / len(periods) / 1000).quantize(Decimal(1)) * 1000
        if base <= 0:
            continue
        for month in [period.first for period in periods] + [current]:
            factor = Decimal(rng.randrange(85, 121)) / 100
            rows.append(
                {
                    "employee_id": employee_id,
                    "month": str(month),
                    "amount": (base * factor).quantize(Decimal("0.01")),
                    "set_at": month.start() - timedelta(days=5),
                }
            )
    if rows:
        await session.execute(insert(PerformanceTarget.__table__), rows)
    return len(rows)
