"""A small fixed dataset for the performance figures, every expectation worked out by hand
(tests/domain/test_performance.py, tests/schema/test_performance_api.py).

November 2026 is [2026-11-01 00:00, 2026-12-01 00:00) UTC.  Employees A (monthly target 1000.00,
a November target of 500.00 set) and B (no target); teams T1 (monthly target 5000.00) and T2.

* c1: A / T1 since 2026-01-01.  Purchases 2026-10-31 23:59:59 (100.00, October), 2026-11-01
  00:00:00 (200.00), 2026-11-30 23:59:59 (300.00), 2026-12-01 00:00:00 (400.00, December).
* c2: A / T1 since 2026-02-01, moved to B / T2 at 2026-11-15 12:00:00 — mid-month.  Purchases
  2026-11-10 (50.00: A's), 2026-11-15 12:00:00 (70.00: B's, the instant of the change is the
  new manager's), 2026-11-20 (30.00: B's).
* c3: no history, B / T2 on the row, created 2026-11-05 (won by B in November).  Purchase 2026-11-06 (10.00).
* c4: A / T1 since 2025-01-01, last purchase 2025-10-01 (not in the trailing 12 months).
* c5: A / T1 since 2025-06-01, a purchase at 2025-12-01 00:00:00 (the first instant of the
  trailing 12 months at November's end: retained).

Tasks (all on c1): A has three due in November (one done on time, one done late, one still open,
both overdue at NOW) besides a cancelled one and ones due in October and December; B one done at
its due second; T2's queue one open past due.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.customers.metrics import recompute_metrics
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
)

T = datetime


async def build(session: AsyncSession) -> dict[str, int]:
    """Writes the dataset (flushed, not committed); returns the ids by name."""
    a = Employee(name="Alice A", email="a@example.com", monthly_target=Decimal("1000.00"))
    b = Employee(name="Bob B", email="b@example.com")
    t1 = Team(key="t1", name="T1", monthly_target=Decimal("5000.00"))
    t2 = Team(key="t2", name="T2")
    session.add_all([a, b, t1, t2])
    await session.flush()
    customers = {
        "c1": Customer(code="c1", name="c1", created_at=T(2026, 1, 1), manager_id=a.id, team_id=t1.id),
        "c2": Customer(code="c2", name="c2", created_at=T(2026, 2, 1), manager_id=b.id, team_id=t2.id),
        "c3": Customer(code="c3", name="c3", created_at=T(2026, 11, 5), manager_id=b.id, team_id=t2.id),
        "c4": Customer(code="c4", name="c4", created_at=T(2025, 1, 1), manager_id=a.id, team_id=t1.id),
        "c5": Customer(code="c5", name="c5", created_at=T(2025, 6, 1), manager_id=a.id, team_id=t1.id),
    }
    session.add_all(customers.values())
    await session.flush()
    c = {name: row.id for name, row in customers.items()}

    def moved(customer: str, at: datetime, before: tuple[Any, Any], after: tuple[Any, Any]) -> AssignmentHistory:
        return AssignmentHistory(
            customer_id=c[customer], changed_at=at, cause="manual",
            manager_before_id=before[0], team_before_id=before[1], manager_after_id=after[0], team_after_id=after[1],
        )

    nobody = (None, None)
    session.add_all(
        [
            moved("c1", T(2026, 1, 1), nobody, (a.id, t1.id)),
            moved("c2", T(2026, 2, 1), nobody, (a.id, t1.id)),
            moved("c2", T(2026, 11, 15, 12), (a.id, t1.id), (b.id, t2.id)),
            moved("c4", T(2025, 1, 1), nobody, (a.id, t1.id)),
            moved("c5", T(2025, 6, 1), nobody, (a.id, t1.id)),
        ]
    )
    purchases = [
        ("c1", T(2026, 10, 31, 23, 59, 59), "100.00"),
        ("c1", T(2026, 11, 1), "200.00"),
        ("c1", T(2026, 11, 30, 23, 59, 59), "300.00"),
        ("c1", T(2026, 12, 1), "400.00"),
        ("c2", T(2026, 11, 10), "50.00"),
        ("c2", T(2026, 11, 15, 12), "70.00"),
        ("c2", T(2026, 11, 20), "30.00"),
        ("c3", T(2026, 11, 6), "10.00"),
        ("c4", T(2025, 10, 1), "999.99"),
        ("c5", T(2025, 12, 1), "5.00"),
    ]
    session.add_all(Purchase(customer_id=c[who], purchased_at=at, amount=Decimal(amount)) for who, at, amount in purchases)
    feedback = [
        # (customer, kind, score, created, resolved)
        ("c1", "survey", 4, T(2026, 11, 3), None),
        ("c2", "survey", 2, T(2026, 11, 16), None),
        ("c1", "survey", 5, T(2026, 12, 1), None),
        ("c5", "survey", 3, T(2026, 11, 30, 23, 59, 59), None),
        ("c1", "nps", 10, T(2026, 11, 2), None),
        ("c4", "nps", 6, T(2026, 11, 3), None),
        ("c5", "nps", 8, T(2026, 11, 4), None),
        ("c2", "nps", 9, T(2026, 11, 16), None),
        ("c1", "complaint", None, T(2026, 10, 25), T(2026, 11, 2)),
        ("c2", "complaint", None, T(2026, 11, 10), T(2026, 11, 16)),
        ("c5", "complaint", None, T(2026, 11, 20, 10), T(2026, 11, 20, 14)),
        ("c4", "complaint", None, T(2026, 11, 21), None),
        ("c1", "complaint", None, T(2026, 11, 25, 12), T(2026, 11, 26, 12)),
        ("c3", "complaint", None, T(2026, 11, 6), T(2026, 11, 7)),
    ]
    session.add_all(
        Feedback(
            customer_id=c[who], kind=kind, score=score, created_at=created, resolved_at=resolved,
            status="resolved" if resolved is not None else ("open" if kind == "complaint" else "closed"),
        )
        for who, kind, score, created, resolved in feedback
    )
    interactions = [("c1", T(2026, 11, 1)), ("c2", T(2026, 11, 15, 11, 59, 59)), ("c2", T(2026, 11, 15, 12))]
    session.add_all(Interaction(customer_id=c[who], kind="call", occurred_at=at) for who, at in interactions)
    tasks = [
        # (assignee employee, team queue, due, status, completed)
        (a.id, None, T(2026, 11, 10), "done", T(2026, 11, 9)),  # on time
        (a.id, None, T(2026, 11, 20), "done", T(2026, 11, 21)),  # done late: overdue
        (a.id, None, T(2026, 11, 25), "open", None),  # open past due: overdue
        (a.id, None, T(2026, 11, 28), "cancelled", T(2026, 11, 27)),  # left out
        (a.id, None, T(2026, 12, 1), "open", None),  # December
        (a.id, None, T(2026, 10, 31, 23, 59, 59), "done", T(2026, 10, 30)),  # October
        (b.id, None, T(2026, 11, 30, 23, 59, 59), "done", T(2026, 11, 30, 23, 59, 59)),  # on time, to the second
        (None, t2.id, T(2026, 11, 15), "open", None),  # T2's queue, overdue
    ]
    session.add_all(
        Task(
            customer_id=c["c1"], employee_id=employee, team_id=team, kind=f"k{index}", title="t", due_at=due,
            status=status, completed_at=completed, created_at=T(2026, 10, 1),
        )
        for index, (employee, team, due, status, completed) in enumerate(tasks)
    )
    session.add_all(
        [
            PerformanceTarget(employee_id=a.id, month="2026-11", amount=Decimal("500.00")),
            PerformanceTarget(employee_id=b.id, month="2026-10", amount=Decimal("200.00")),
        ]
    )
    await session.flush()
    await recompute_metrics(session)
    return {"A": a.id, "B": b.id, "T1": t1.id, "T2": t2.id, **c}


NOW = T(2026, 12, 6, 9)

# Every figure of November 2026, by owner (ratios derived as the docs say).
NOVEMBER: dict[str, dict[str, Any]] = {
    "A": {
        "revenue": Decimal("550.00"), "purchases": 3, "target": Decimal("500.00"), "attainment": 1.1,
        "customers_at_start": 4, "customers_at_end": 3, "customers_won": 0, "customers_lost": 1,
        "customers_retained": 2, "retention_rate": 0.5,
        "survey_count": 2, "average_satisfaction": 3.5, "nps_count": 3, "nps": 0.0,
        "complaints_received": 4, "complaints_resolved": 3, "median_resolution_hours": 24.0,
        "interactions": 2, "tasks_due": 3, "tasks_done_on_time": 1, "tasks_overdue": 2, "task_completion_rate": 1 / 3,
    },
    "B": {
        "revenue": Decimal("110.00"), "purchases": 3, "target": None, "attainment": None,
        "customers_at_start": 0, "customers_at_end": 2, "customers_won": 2, "customers_lost": 0,
        "customers_retained": 0, "retention_rate": None,
        "survey_count": 1, "average_satisfaction": 2.0, "nps_count": 1, "nps": 100.0,
        "complaints_received": 1, "complaints_resolved": 2, "median_resolution_hours": 84.0,
        "interactions": 1, "tasks_due": 1, "tasks_done_on_time": 1, "tasks_overdue": 0, "task_completion_rate": 1.0,
    },
}
# The teams saw the same moves as the managers; T1 has a monthly target, T2 none.  Their tasks are their
# queues' and their members' (none are members here): T1 has none, T2 the one of its queue.
NO_TASKS = {"tasks_due": 0, "tasks_done_on_time": 0, "tasks_overdue": 0, "task_completion_rate": None}
NOVEMBER["T1"] = {**NOVEMBER["A"], "target": Decimal("5000.00"), "attainment": 0.11, **NO_TASKS}
NOVEMBER["T2"] = {**NOVEMBER["B"], "tasks_due": 1, "tasks_done_on_time": 0, "tasks_overdue": 1, "task_completion_rate": 0.0}
