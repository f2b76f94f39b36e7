"""The demo's hand-made follow-up tasks (`segmenta seed` / `segmenta demo`): every kind the sample rules give
and two of the team's own, open (some overdue), done (on time and late) and cancelled, by people (`manual`)
and by Segmenta (`system`).  The sample rules add their own tasks when the demo applies them.

A pure function of the customers and employees already seeded and `as_of`: the same seed gives the same tasks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.storage.models import Customer, Employee, Task, TeamMember
from segmenta.storage.rule_tasks import title_of

# The sample rules' kinds (domain/sample_rules.seg), then kinds only people create.
KINDS = ("birthday_greeting", "complaint_follow_up", "regular_visit", "win_back", "quarterly_review", "contract_renewal")
# One customer in STRIDE gets a hand-made task; the kind, dates and status follow from its position.
STRIDE = 20
# (days from as_of until due, status, days after due it was closed or None)
PATTERNS: tuple[tuple[int, str, int | None], ...] = (
    (-10, "open", None),  # overdue
    (5, "open", None),
    (-3, "open", None),  # overdue
    (-20, "done", -2),  # done on time
    (-15, "done", 4),  # done late
    (12, "open", None),
    (-8, "cancelled", 1),
)


def task_rows(customer_ids: list[int], employees: list[int], team_of: dict[int, int], as_of: datetime) -> list[dict[str, Any]]:
    rows = []
    for position, customer_id in enumerate(customer_ids[::STRIDE]):
        kind = KINDS[position % len(KINDS)]
        due_days, status, closed_after = PATTERNS[position % len(PATTERNS)]
        due = as_of + timedelta(days=due_days)
        employee = employees[position % len(employees)] if employees else None
        queued = position % 5 == 4 and employee in team_of  # some wait in the employee's team's queue
        closed = None if closed_after is None else due + timedelta(days=closed_after)
        rows.append({
            "customer_id": customer_id,
            "employee_id": None if queued else employee,
            "team_id": team_of.get(employee) if queued and employee is not None else None,
            "kind": kind,
            "title": title_of(kind),
            "due_at": due,
            "status": status,
            "source": "system" if position % 3 == 0 else "manual",
            "created_at": due - timedelta(days=7),
            "completed_at": closed,
            "completed_by_id": employee if closed is not None else None,
            "outcome": {"done": "spoke to the customer", "cancelled": "no longer needed"}.get(status),
        })
    return rows


async def seed_tasks(session: AsyncSession, as_of: datetime) -> int:
    """Insert the demo's hand-made tasks (caller's transaction); returns how many."""
    customer_ids = list((await session.execute(select(Customer.id).order_by(Customer.id))).scalars())
    employees = list((await session.execute(select(Employee.id).where(Employee.active).order_by(Employee.id))).scalars())
    team_of: dict[int, int] = {}
    for employee_id, team_id in await session.execute(select(TeamMember.employee_id, TeamMember.team_id).order_by(TeamMember.id)):
        team_of.setdefault(employee_id, team_id)
    rows = task_rows(customer_ids, employees, team_of, as_of)
    if rows:
        await session.execute(insert(Task), rows)
    return len(rows)
