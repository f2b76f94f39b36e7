"""Benchmark: a month's performance of every employee (docs/performance.md) versus one hand-written
SQL statement computing the same revenue and attainment.

    .venv/bin/python bench/performance.py --customers 1000000 --purchases 3000000 [--postgres URL]

Builds the data set inside the database in bulk SQL (recursive CTE on SQLite, generate_series on
PostgreSQL): 40 employees in 6 teams, N customers each with the history row its routing wrote when
it was created, 5 % of them moved to another manager since (half of those during the measured
month), M purchases over the two years before the month's end, 4 % as many survey/NPS/complaint
rows, 8 % as many interactions, 2 % as many tasks, and per-month targets for half the employees.
Then, in the same process, alternating (best of --repeat):

1. `hand`: one hand-written statement: every employee's revenue in the month (each purchase
   counted for the manager at its time, from the assignment history, as the product defines it),
   target (the month's target, else monthly_target) and attainment;
2. `every figure`: domain.staff.performance.performance_of for every employee and the month: every
   figure (revenue, target, customers won/lost/retained, surveys, NPS, complaints and their median
   resolution, interactions, tasks), one statement;
3. `revenue and attainment alone`: the same with only the sales group (what a query selecting only
   revenue, target and attainment runs);
4. `series`: every figure for the twelve months up to it (what `performanceSeries` runs).

It checks that revenue and target agree for every employee and prints the times and ratios.
Target: every figure ≤ 3 × hand.  `--reuse` with `--directory DIR` (SQLite) or `--postgres URL`
times a data set built by an earlier run again.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from generated_rows import (  # bench/ is the script folder, first on sys.path
    add_data_set_arguments,
    numbers,
    open_data_set,
    pick,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from segmenta.domain.staff.performance import Month, Period, performance_of, series_periods
from segmenta.dsl.money import from_cents
from segmenta.storage.engine import session_factory
from segmenta.storage.performance_sql import EMPLOYEE, SALES

MONTH = Month(2026, 5)
END = "2026-06-01 00:00:00"
EMPLOYEES = 40
TEAMS = 6

# Every employee's revenue in the month, each purchase counted for the manager at its time: the latest
# change at or before it, else the first change's "before", else (no history) the customer's manager.
HAND_WRITTEN = """
SELECT e.id,
       COALESCE(r.revenue, 0) AS revenue,
       COALESCE(t.amount, e.monthly_target) AS target,
       CASE WHEN COALESCE(t.amount, e.monthly_target) > 0
            THEN 1.0 * COALESCE(r.revenue, 0) / COALESCE(t.amount, e.monthly_target) END AS attainment
FROM employees e
LEFT JOIN performance_targets t ON t.employee_id = e.id AND t.month = :month
LEFT JOIN (
  SELECT manager_id, SUM(amount) AS revenue
  FROM (
    SELECT p.amount,
           COALESCE(
             (SELECT COALESCE(h.manager_after_id, 0) FROM assignment_history h
              WHERE h.customer_id = p.customer_id AND h.changed_at <= p.purchased_at
              ORDER BY h.changed_at DESC, h.id DESC LIMIT 1),
             (SELECT COALESCE(h.manager_before_id, 0) FROM assignment_history h
              WHERE h.customer_id = p.customer_id ORDER BY h.changed_at, h.id LIMIT 1),
             (SELECT COALESCE(c.manager_id, 0) FROM customers c WHERE c.id = p.customer_id)) AS manager_id
    FROM purchases p
    WHERE p.purchased_at >= :start AND p.purchased_at < :end
  ) AS attributed
  GROUP BY manager_id
) r ON r.manager_id = e.id
ORDER BY e.id
"""


def _before_end(dialect: str, seconds: str) -> str:
    """The instant `seconds` (an SQL expression) before END."""
    if dialect == "postgresql":
        return f"(TIMESTAMP '{END}' - make_interval(secs => {seconds}))"
    return f"datetime('{END}', (-({seconds})) || ' seconds')"


async def build(engine: AsyncEngine, customers: int, purchases: int) -> None:
    dialect = engine.dialect.name
    started = time.perf_counter()
    two_years = 2 * 365 * 86400
    true = "true" if dialect == "postgresql" else "1"

    async def run(statement: str, **binds: Any) -> None:
        async with engine.begin() as connection:
            await connection.execute(text(statement), binds)

    def step(name: str) -> None:
        print(f"  {name}: {time.perf_counter() - started:.1f} s", flush=True)

    for team in range(1, TEAMS + 1):
        await run(
            "INSERT INTO teams (id, key, name, kind, strategy, round_robin_position, created_at, active, monthly_target) "
            f"VALUES (:id, :key, :key, 'general', 'round_robin', 0, CURRENT_TIMESTAMP, {true}, :target)",
            id=team, key=f"team{team}", target=team * 10_000_000,
        )
    for employee in range(1, EMPLOYEES + 1):
        await run(
            "INSERT INTO employees (id, name, email, level, specialties, regions, active, created_at, monthly_target) "
            f"VALUES (:id, :name, :email, 'junior', '[]', '[]', {true}, CURRENT_TIMESTAMP, :target)",
            id=employee, name=f"Employee {employee}", email=f"e{employee}@bench.example", target=(1 + employee % 4) * 2_000_000,
        )
        await run(
            "INSERT INTO team_members (team_id, employee_id, role, joined_at) VALUES (:team, :id, 'member', CURRENT_TIMESTAMP)",
            team=1 + employee % TEAMS, id=employee,
        )
        if employee % 2 == 0:
            await run(
                "INSERT INTO performance_targets (employee_id, month, amount, set_at) VALUES (:id, :month, :amount, CURRENT_TIMESTAMP)",
                id=employee, month=str(MONTH), amount=(1 + employee % 3) * 3_000_000,
            )
    # Customers: created over three years before the month's end; manager i % 40, team of that manager.
    created = _before_end(dialect, f"40 * 86400 + (i * 7919) % {3 * 365 * 86400}")
    await run(
        "INSERT INTO customers (id, code, name, kind, created_at, updated_at, assignment_locked, purchase_count, "
        "total_spent, survey_count, survey_sum, nps_count, nps_sum, feedback_count, complaint_count, open_complaints, "
        "interaction_count, routing_version, manager_id, team_id) "
        f"SELECT i, 'C' || i, 'Customer ' || i, 'company', {created}, {created}, {'false' if dialect == 'postgresql' else '0'}, "
        f"0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 + i % {EMPLOYEES}, 1 + (1 + i % {EMPLOYEES}) % {TEAMS} "
        f"FROM {numbers(dialect, customers)}"
    )
    step("customers")
    # The history routing wrote: every customer's first assignment when it was created …
    await run(
        "INSERT INTO assignment_history (customer_id, team_before_id, team_after_id, manager_before_id, manager_after_id, cause, changed_at) "
        "SELECT id, NULL, team_id, NULL, manager_id, 'run', created_at FROM customers"
    )
    # … and for one customer in twenty a move from the previous manager, half of them in the measured month.
    moved_at = _before_end(dialect, f"(CAST(id AS BIGINT) * 104729) % {2 * 31 * 86400}")
    await run(
        "INSERT INTO assignment_history (customer_id, team_before_id, team_after_id, manager_before_id, manager_after_id, cause, changed_at) "
        f"SELECT id, team_id, team_id, 1 + (manager_id % {EMPLOYEES}), manager_id, 'manual', {moved_at} FROM customers "
        f"WHERE id % 20 = 7 AND created_at < {moved_at}"
    )
    # The first assignment of a moved customer was to the manager it was moved from.
    await run(
        f"UPDATE assignment_history SET manager_after_id = 1 + (manager_after_id % {EMPLOYEES}) "
        "WHERE cause = 'run' AND customer_id IN (SELECT customer_id FROM assignment_history WHERE cause = 'manual')"
    )
    step("assignment history")
    when = _before_end(dialect, f"(i * 48271) % {two_years}")
    await run(
        "INSERT INTO purchases (customer_id, amount, category, purchased_at) "
        f"SELECT 1 + (i * 7) % {customers}, ((i * 31) % 2000) * 100 + 50, 'software', {when} "
        f"FROM {numbers(dialect, purchases)}"
    )
    step("purchases")
    feedback = max(purchases // 25, 1)
    kinds = pick("i", ["survey", "nps", "complaint"])
    resolved = _before_end(dialect, f"(i * 48271) % {two_years} - 3600 * (1 + i % 200)")
    await run(
        "INSERT INTO feedback (customer_id, kind, score, status, created_at, resolved_at) "
        f"SELECT 1 + (i * 13) % {customers}, {kinds}, CASE i % 3 WHEN 0 THEN 1 + i % 5 WHEN 1 THEN i % 11 END, "
        f"CASE WHEN i % 3 = 2 AND i % 4 > 0 THEN 'resolved' ELSE 'closed' END, {when}, "
        f"CASE WHEN i % 3 = 2 AND i % 4 > 0 THEN {resolved} END FROM {numbers(dialect, feedback)}"
    )
    await run(
        "INSERT INTO interactions (customer_id, kind, occurred_at) "
        f"SELECT 1 + (i * 17) % {customers}, 'call', {when} FROM {numbers(dialect, max(purchases // 12, 1))}"
    )
    due = _before_end(dialect, f"(i * 48271) % {60 * 86400} - 10 * 86400")
    await run(
        "INSERT INTO tasks (customer_id, employee_id, kind, title, due_at, status, source, created_at, completed_at) "
        f"SELECT 1 + (i * 19) % {customers}, 1 + i % {EMPLOYEES}, 'k' || i, 'follow up', {due}, "
        f"CASE i % 3 WHEN 0 THEN 'open' WHEN 1 THEN 'done' ELSE 'cancelled' END, 'system', {due}, "
        f"CASE WHEN i % 3 > 0 THEN {due} END FROM {numbers(dialect, max(purchases // 50, 1))}"
    )
    step("feedback, interactions, tasks")
    await run(
        "UPDATE customers SET purchase_count = agg.n, total_spent = agg.total, "
        "first_purchase_at = agg.first_at, last_purchase_at = agg.last_at "
        "FROM (SELECT customer_id, count(*) AS n, sum(amount) AS total, min(purchased_at) AS first_at, "
        "max(purchased_at) AS last_at FROM purchases GROUP BY customer_id) AS agg "
        "WHERE customers.id = agg.customer_id"
    )
    await run("ANALYZE")
    step(f"built {customers:,} customers and {purchases:,} purchases")


async def hand_written(session: AsyncSession) -> dict[int, tuple[Decimal, Decimal | None]]:
    period = Period(MONTH, MONTH)
    rows = await session.execute(
        text(HAND_WRITTEN), {"month": str(MONTH), "start": period.start, "end": period.end}
    )
    return {
        int(employee): (from_cents(int(revenue)), None if target is None else from_cents(int(target)))
        for employee, revenue, target, _ in rows.all()
    }


async def timed(work: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await work
    return time.perf_counter() - started, result


async def main(arguments: argparse.Namespace) -> None:
    engine = await open_data_set(arguments, "performance.db")
    if not arguments.reuse:
        await build(engine, arguments.customers, arguments.purchases)
    employees = list(range(1, EMPLOYEES + 1))
    as_of = datetime(2026, 6, 15)
    hands, performances, sales_only, series = [], [], [], []
    async with session_factory(engine)() as session:
        for _ in range(arguments.repeat):
            elapsed, hand = await timed(hand_written(session))
            hands.append(elapsed)
            elapsed, found = await timed(performance_of(session, EMPLOYEE, employees, [Period(MONTH, MONTH)], as_of))
            performances.append(elapsed)
            elapsed, sales = await timed(
                performance_of(session, EMPLOYEE, employees, [Period(MONTH, MONTH)], as_of, groups=[SALES])
            )
            sales_only.append(elapsed)
            if not arguments.no_series:
                elapsed, _ = await timed(performance_of(session, EMPLOYEE, employees, series_periods(str(MONTH), 12, as_of), as_of))
                series.append(elapsed)
            await session.rollback()
    await engine.dispose()
    wrong = [
        employee for employee in employees
        if (found[(employee, 0)].revenue, found[(employee, 0)].target) != hand.get(employee, (Decimal(0), None))
        or (sales[(employee, 0)].revenue, sales[(employee, 0)].target) != hand.get(employee, (Decimal(0), None))
    ]
    total = sum((figures.revenue for figures in found.values()), Decimal(0))
    moved = sum(figures.customers_won for figures in found.values())
    print()
    print(f"employees whose revenue or target differ from the hand-written statement: {len(wrong)}")
    print(f"revenue of {MONTH}: {total}; customers won in the month: {moved:,}")
    print(f"best of {arguments.repeat}: hand-written {min(hands):.3f} s, every figure {min(performances):.3f} s, "
          f"revenue and attainment alone {min(sales_only):.3f} s"
          + (f", 12-month series {min(series):.3f} s" if series else ""))
    print(f"ratio every figure / hand-written:        {min(performances) / min(hands):.1f}x  (target <= 3x)")
    print(f"ratio revenue and attainment / hand-written: {min(sales_only) / min(hands):.1f}x")
    if series:
        print(f"ratio series / hand-written:      {min(series) / min(hands):.1f}x  (twelve months of every figure)")
    if wrong:
        sys.exit(1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_set_arguments(parser)
    parser.add_argument("--repeat", type=int, default=3, help="alternate the timings N times; report the best")
    parser.add_argument("--no-series", action="store_true", help="skip the 12-month series")
    asyncio.run(main(parser.parse_args()))
