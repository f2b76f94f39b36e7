"""domain.seed_history: the demo's past (history dated back to each customer's creation, earlier
managers for some, per-month targets) gives the series and the league table something to show."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from segmenta.domain.routing.runs import apply_ruleset
from segmenta.domain.seed import sample_rules, seed_database
from segmenta.domain.seed_history import backdate_demo_history
from segmenta.domain.staff.performance import performance_of, series_periods
from segmenta.storage.engine import session_factory
from segmenta.storage.models import AssignmentHistory, Customer, Employee, PerformanceTarget
from segmenta.storage.performance_sql import EMPLOYEE

AS_OF = datetime(2026, 12, 6)


async def test_the_demo_past(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        async with session.begin():
            await seed_database(session, customers=400, seed=5, as_of=AS_OF)
            ruleset = await save_ruleset(session, "sample", sample_rules())
            await activate_ruleset(session, ruleset.id)
        run = await apply_ruleset(session, ruleset.id, as_of=AS_OF)
        assert run.status == "succeeded", run.error
        async with session.begin():
            moved = await backdate_demo_history(session, AS_OF, seed=5)
        assert moved > 0
        # Every first assignment is dated at the customer's creation; the moves are in the last ten months.
        first = (
            await session.execute(
                select(func.count()).select_from(AssignmentHistory).join(Customer, Customer.id == AssignmentHistory.customer_id)
                .where(AssignmentHistory.manager_before_id.is_(None), AssignmentHistory.changed_at != Customer.created_at)
            )
        ).scalar_one()
        assert first == 0
        moves = list(await session.scalars(select(AssignmentHistory.changed_at).where(AssignmentHistory.cause == "manual")))
        assert len(moves) == moved and all(datetime(2026, 2, 9) <= at < datetime(2026, 11, 27) for at in moves)
        assert await session.scalar(select(func.count()).select_from(PerformanceTarget)) > 0
        employees = list(await session.scalars(select(Employee.id)))
        found = await performance_of(session, EMPLOYEE, employees, series_periods("2026-11", 12, AS_OF), AS_OF)
        # Revenue in every month of the year, and won and lost customers in it.
        for month in range(12):
            assert sum(found[(employee, month)].revenue for employee in employees) > 0
        assert sum(figures.customers_won for figures in found.values()) > 0
        assert sum(figures.customers_lost for figures in found.values()) > 0
        attainments = [figures.attainment for figures in found.values() if figures.attainment is not None]
        assert min(attainments) < 1 < max(attainments)
