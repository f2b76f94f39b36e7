"""Benchmark: applying a ~6-rule ruleset to N customers versus one hand-written SQL statement.

    .venv/bin/python bench/apply.py --customers 1000000 --purchases 3000000 [--postgres URL]

Builds the data set inside the database (recursive CTE on SQLite, generate_series
on PostgreSQL; metrics as one aggregate UPDATE), then, in the same process:

1. `hand`: one hand-written statement computing every customer's team
   (CREATE TABLE … AS SELECT id, CASE … END FROM customers);
2. `first apply`: domain.routing.runs.apply_ruleset from a database where nobody has a
   team yet (every customer changes: teams, managers, segments, tags, change
   rows, history);
3. `re-apply`: the same ruleset again (nothing changes; what a scheduled daily
   run costs);
4. `preview`: a preview of the same ruleset (nothing changes);
5. `next day`: an apply one day later (day-based metrics move a few customers);
6. `hand UPDATE`: one hand-written `UPDATE customers SET team_id = CASE … END`,
   rolled back — the floor of a first apply's writes (which also write managers,
   change rows, history, segments and tags).

It checks that the apply produced exactly the hand-written teams, and prints the
times, the ratios to `hand` and the peak resident memory (ru_maxrss).
Targets: apply ≤ 3 × hand; peak memory < 1 GB.

`--tasks` times instead a first apply of RULES against the same apply of RULES plus two
`-> task` actions (TASK_RULES: about 9.5 % of the customers, 95,000 tasks per 1,000,000),
alternately (`--repeat-first N` pairs, best of each), and checks the tasks created.
Target: with tasks ≤ 1.5 × without.

Options: `--directory DIR --reuse` (SQLite) or `--postgres URL --reuse` times a data
set built by an earlier run again (it is reset to "nobody routed yet" first);
`--repeat N` times hand-written, re-apply and preview N times and reports the best,
`--repeat-first N` the first apply (undone in between, untimed);
`--profile` prints, per phase, the statements that took the most time (wall time
of the driver's execute, summed by statement).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from datetime import datetime, timedelta
from typing import Any

from generated_rows import (  # bench/ is the script folder, first on sys.path
    add_data_set_arguments,
    numbers,
    open_data_set,
    pick,
)
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from segmenta.domain.routing import runs
from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from segmenta.storage.engine import session_factory

AS_OF = datetime(2026, 6, 1)
RULES = """
segment high_value = total_spent >= 5000 or purchase_count >= 8
segment lapsing    = purchase_count > 0 and days_since_purchase > 180
key_accounts: size >= large and high_value -> team senior_sales, tag key_account
recovery: lapsing and lifecycle in (at_risk, churned) -> team customer_success, tag needs_call
east: region in (east, north_east) -> team east_region
finance: industry = finance -> team finance_desk
standard: size in (small, medium) -> team standard_service
otherwise -> team general_pool
"""
# Additive task rules (no team action): lifecycle = at_risk is 1 customer in 6 and each region pair
# 2 in 7 of the generated data (independent), so each rule gives 1 customer in 21 a task.
TASK_RULES = RULES.replace("otherwise -> team general_pool", """\
follow: lifecycle = at_risk and region in (east, west) -> task follow_up within 2 days
win: lifecycle = at_risk and region in (north, south) -> task win_back
otherwise -> team general_pool""")
# team key, strategy, members, capacity per member
TEAMS = [
    ("senior_sales", "round_robin", 5, None),
    ("customer_success", "least_loaded", 4, 100_000),
    ("east_region", "round_robin", 8, None),
    ("finance_desk", "manual", 3, None),
    ("standard_service", "round_robin", 10, 60_000),
    ("general_pool", "manual", 2, None),
]
# Money columns hold whole cents (storage/money_type.py): 5000 is 500000 here, and amounts are written in cents.
TEAM_CASE = """
       CASE
         WHEN c.size IN ('large', 'enterprise') AND (c.total_spent >= 500000 OR c.purchase_count >= 8)
           THEN (SELECT id FROM teams WHERE key = 'senior_sales')
         WHEN c.purchase_count > 0 AND c.last_purchase_at <= :lapsed_before AND c.lifecycle IN ('at_risk', 'churned')
           THEN (SELECT id FROM teams WHERE key = 'customer_success')
         WHEN c.region IN ('east', 'north_east') THEN (SELECT id FROM teams WHERE key = 'east_region')
         WHEN c.industry = 'finance' THEN (SELECT id FROM teams WHERE key = 'finance_desk')
         WHEN c.size IN ('small', 'medium') THEN (SELECT id FROM teams WHERE key = 'standard_service')
         ELSE (SELECT id FROM teams WHERE key = 'general_pool')
       END"""
HAND_WRITTEN = f"CREATE TABLE bench_hand_teams AS SELECT c.id AS customer_id, {TEAM_CASE} AS team_id FROM customers c"
# The write floor of a first apply: the same teams written onto every customer (then rolled back).
HAND_WRITTEN_UPDATE = f"UPDATE customers AS c SET team_id = {TEAM_CASE}"


async def build(engine: AsyncEngine, customers: int, purchases: int) -> None:
    dialect = engine.dialect.name
    started = time.perf_counter()
    async with engine.begin() as connection:
        now = "CURRENT_TIMESTAMP"
        sizes = pick("i * 7", ["small", "medium", "large", "enterprise", "small", "medium", None])
        regions = pick("i * 13", ["east", "west", "north", "south", "north_east", "华东", None])
        industries = pick("i * 3", ["finance", "retail", "technology", "manufacturing", "health"])
        lifecycles = pick("i * 11", ["new", "active", "loyal", "at_risk", "churned", "prospect"])
        await connection.execute(
            text(
                "INSERT INTO customers (id, code, name, kind, size, region, industry, lifecycle, created_at, updated_at, "
                "assignment_locked, purchase_count, total_spent, survey_count, survey_sum, nps_count, nps_sum, "
                "feedback_count, complaint_count, open_complaints, interaction_count) "
                f"SELECT i, 'C' || i, 'Customer ' || i, 'company', {sizes}, {regions}, {industries}, {lifecycles}, "
                f"{now}, {now}, {'false' if dialect == 'postgresql' else '0'}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 "
                f"FROM {numbers(dialect, customers)}"
            )
        )
        day = "make_interval(days => CAST((i * 37) % 400 AS INTEGER))" if dialect == "postgresql" else None
        stamp = (
            f"(TIMESTAMP '2026-06-01 00:00:00' - {day})"
            if dialect == "postgresql"
            else "datetime('2026-06-01', '-' || ((i * 37) % 400) || ' days')"
        )
        print(f"  customers inserted: {time.perf_counter() - started:.1f} s", flush=True)
        await connection.execute(
            text(
                "INSERT INTO purchases (customer_id, amount, category, purchased_at) "
                # Customer ids non-decreasing in i (index-friendly appends), skewed so
                # that the first customers buy much more than the last ones.
                f"SELECT 1 + ((CAST({customers} AS BIGINT) * (i - 1) / {purchases}) * (i - 1)) / {purchases}, "
                "((i * 31) % 2000) * 100 + 50, "
                f"{pick('i', ['software', 'hardware', 'services', 'support'])}, {stamp} "
                f"FROM {numbers(dialect, purchases)}"
            )
        )
        print(f"  customers and purchases inserted: {time.perf_counter() - started:.1f} s", flush=True)
        await connection.execute(
            text(
                "UPDATE customers SET purchase_count = agg.n, total_spent = agg.total, "
                "first_purchase_at = agg.first_at, last_purchase_at = agg.last_at "
                "FROM (SELECT customer_id, count(*) AS n, sum(amount) AS total, min(purchased_at) AS first_at, "
                "max(purchased_at) AS last_at FROM purchases GROUP BY customer_id) AS agg "
                "WHERE customers.id = agg.customer_id"
            )
        )
        print(f"  metrics: {time.perf_counter() - started:.1f} s", flush=True)
        employee = 0
        for key, strategy, members, capacity in TEAMS:
            team_id = (
                await connection.execute(
                    text(
                        "INSERT INTO teams (key, name, kind, strategy, round_robin_position, created_at) "
                        "VALUES (:key, :key, 'general', :strategy, 0, CURRENT_TIMESTAMP) RETURNING id"
                    ),
                    {"key": key, "strategy": strategy},
                )
            ).scalar_one()
            for _ in range(members):
                employee += 1
                employee_id = (
                    await connection.execute(
                        text(
                            "INSERT INTO employees (name, email, level, specialties, regions, capacity, active, created_at) "
                            "VALUES (:name, :email, 'senior', :specialties, :regions, :capacity, true, CURRENT_TIMESTAMP) "
                            "RETURNING id"
                        ),
                        {
                            "name": f"Employee {employee}",
                            "email": f"e{employee}@bench.example",
                            "specialties": '["finance"]' if employee % 3 == 0 else "[]",
                            "regions": '["east"]' if employee % 4 == 0 else "[]",
                            "capacity": capacity,
                        },
                    )
                ).scalar_one()
                await connection.execute(
                    text(
                        "INSERT INTO team_members (team_id, employee_id, role, joined_at) "
                        "VALUES (:team, :employee, 'member', CURRENT_TIMESTAMP)"
                    ),
                    {"team": team_id, "employee": employee_id},
                )
        await connection.execute(text("ANALYZE"))
    print(f"built {customers:,} customers and {purchases:,} purchases in {time.perf_counter() - started:.1f} s")


class Profile:
    """Driver execute time per statement, summed by (phase, statement start)."""

    def __init__(self) -> None:
        self.phase = "setup"
        self.totals: dict[str, dict[str, list[float]]] = {}

    def attach(self, engine: AsyncEngine) -> None:
        sync_engine = engine.sync_engine

        @event.listens_for(sync_engine, "before_cursor_execute")
        def before(connection: Any, _cursor: Any, _statement: str, _parameters: Any, _context: Any, _many: bool) -> None:
            connection.info["bench_started"] = time.perf_counter()

        @event.listens_for(sync_engine, "after_cursor_execute")
        def after(connection: Any, _cursor: Any, statement: str, _parameters: Any, _context: Any, _many: bool) -> None:
            elapsed = time.perf_counter() - connection.info.pop("bench_started", time.perf_counter())
            key = " ".join(statement.split())[:110]
            entry = self.totals.setdefault(self.phase, {}).setdefault(key, [0, 0.0])
            entry[0] += 1
            entry[1] += elapsed

    def report(self, phase: str, top: int = 12) -> None:
        statements = self.totals.get(phase, {})
        total = sum(seconds for _, seconds in statements.values())
        print(f"  [{phase}] {len(statements)} distinct statements, {total:.2f} s in execute")
        for key, (count, seconds) in sorted(statements.items(), key=lambda item: -item[1][1])[:top]:
            print(f"    {seconds:7.3f} s  x{count:<4} {key}")


PROFILE = Profile()


async def timed(label: str, work: Any) -> tuple[float, Any]:
    PROFILE.phase = label
    PROFILE.totals.pop(label, None)  # a repeat keeps the last one
    started = time.perf_counter()
    result = await work
    elapsed = time.perf_counter() - started
    print(f"{label:<14} {elapsed:8.2f} s", flush=True)
    return elapsed, result


async def unroute(engine: AsyncEngine) -> None:
    """Back to "nobody routed yet", keeping the generated customers and purchases (not timed)."""
    async with engine.begin() as connection:
        for table in ("tasks", "task_triggers", "evaluation_changes", "assignment_history", "segment_members", "customer_tags",
                      "evaluation_runs"):
            await connection.execute(text(f"DELETE FROM {table}"))
        await connection.execute(text("UPDATE customers SET team_id = NULL, manager_id = NULL, deciding_rule = NULL"))
        await connection.execute(text("DELETE FROM segments"))
        await connection.execute(text("UPDATE teams SET round_robin_position = 0"))


async def forget_tasks(engine: AsyncEngine) -> None:
    """No task and no trigger: the next apply creates every task its rules give (not timed)."""
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM tasks"))
        await connection.execute(text("DELETE FROM task_triggers"))


async def compare_tasks(engine: AsyncEngine, repeat: int) -> None:
    """First applies without and with task actions, alternately from the same state; best of each."""
    factory = session_factory(engine)
    plain_times: list[float] = []
    task_times: list[float] = []
    created = 0
    async with factory() as session:
        plain = await save_ruleset(session, "bench plain", RULES)
        with_tasks = await save_ruleset(session, "bench tasks", TASK_RULES)
        assert not (plain.has_errors or with_tasks.has_errors), (plain.diagnostics, with_tasks.diagnostics)
        await session.commit()
        for _ in range(repeat):
            for ruleset, times, label in ((plain, plain_times, "apply"), (with_tasks, task_times, "apply + tasks")):
                await session.commit()  # its reads end: the resets below write
                await unroute(engine)
                await forget_tasks(engine)
                session.expunge_all()  # the runs' rows are gone; their ids come round again
                await activate_ruleset(session, ruleset.id)
                await session.commit()
                elapsed, run = await timed(label, runs.apply_ruleset(session, ruleset.id, as_of=AS_OF))
                assert run.status == "succeeded", run.error
                times.append(elapsed)
                if ruleset is with_tasks:
                    created = sum(item["count"] for item in run.summary["tasks"])
                    stored = int((await session.execute(text("SELECT count(*) FROM tasks"))).scalar_one())
                    assert stored == created, (stored, created)
    best_plain, best_tasks = min(plain_times), min(task_times)
    print()
    print(f"tasks created: {created:,}")
    print(f"best of {repeat}: apply {best_plain:.2f} s, apply + tasks {best_tasks:.2f} s")
    print(f"ratio apply + tasks / apply: {best_tasks / best_plain:.2f}x  (target <= 1.5x)")


async def hand_written(session: AsyncSession) -> None:
    await session.execute(text("DROP TABLE IF EXISTS bench_hand_teams"))
    await session.execute(text(HAND_WRITTEN), {"lapsed_before": AS_OF - timedelta(days=181)})
    await session.commit()


async def hand_written_update(session: AsyncSession) -> float:
    """Seconds the hand-written UPDATE takes; rolled back (untimed), so nothing changes."""
    started = time.perf_counter()
    await session.execute(text(HAND_WRITTEN_UPDATE), {"lapsed_before": AS_OF - timedelta(days=181)})
    elapsed = time.perf_counter() - started
    await session.rollback()
    print(f"{'hand UPDATE':<14} {elapsed:8.2f} s", flush=True)
    return elapsed


async def mismatches(session: AsyncSession) -> int:
    statement = text(
        "SELECT count(*) FROM customers c JOIN bench_hand_teams h ON h.customer_id = c.id "
        "WHERE c.team_id IS NULL OR c.team_id <> h.team_id"
    )
    return int((await session.execute(statement)).scalar_one())


async def main(arguments: argparse.Namespace) -> None:
    engine = await open_data_set(arguments, "bench.db")
    if arguments.reuse:
        await unroute(engine)
        async with engine.begin() as connection:
            await connection.execute(text("DELETE FROM rulesets"))
    else:
        await build(engine, arguments.customers, arguments.purchases)
    PROFILE.attach(engine)
    if arguments.tasks:
        await compare_tasks(engine, arguments.repeat_first)
        await engine.dispose()
        return
    factory = session_factory(engine)
    async with factory() as session:
        ruleset = await save_ruleset(session, "bench", RULES)
        assert not ruleset.has_errors, ruleset.diagnostics
        await activate_ruleset(session, ruleset.id)
        await session.commit()

        hand, _ = await timed("hand-written", hand_written(session))
        firsts = []
        for attempt in range(arguments.repeat_first):
            if attempt:
                await unroute(engine)
            elapsed, first_run = await timed("first apply", runs.apply_ruleset(session, ruleset.id, as_of=AS_OF))
            assert first_run.status == "succeeded", first_run.error
            firsts.append(elapsed)
        first = min(firsts)
        wrong = await mismatches(session)
        hands, agains, previews = [hand], [], []
        for _ in range(arguments.repeat):
            elapsed, second_run = await timed("re-apply", runs.apply_ruleset(session, ruleset.id, as_of=AS_OF))
            assert second_run.status == "succeeded", second_run.error
            agains.append(elapsed)
            elapsed, _ = await timed("preview", runs.preview_ruleset(session, ruleset.id, as_of=AS_OF))
            previews.append(elapsed)
            elapsed, _ = await timed("hand-written", hand_written(session))
            hands.append(elapsed)
        hand, again, preview = min(hands), min(agains), min(previews)
        # A scheduled run the next day: day-based metrics move some customers (last, as it changes the state).
        next_day, next_run = await timed("next day", runs.apply_ruleset(session, ruleset.id, as_of=AS_OF + timedelta(days=1)))
        assert next_run.status == "succeeded", next_run.error
        # Last: on PostgreSQL even a rolled-back UPDATE leaves a dead version of every row.
        async with factory() as other:
            update_floor = await hand_written_update(other)
    await engine.dispose()
    if arguments.profile:
        print()
        for phase in ("first apply", "re-apply", "preview", "next day"):
            PROFILE.report(phase)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summary = first_run.summary
    print()
    print(f"teams differing from the hand-written statement: {wrong}")
    print(f"first apply: {summary['changed']:,} changed, unassigned {summary['unassigned_by_team']}")
    print(f"re-apply: {second_run.summary['changed']:,} changed")
    if arguments.repeat > 1 or arguments.repeat_first > 1:
        print(
            f"best of {arguments.repeat_first} first applies: {first:.2f} s; best of {arguments.repeat}: "
            f"hand-written {hand:.2f} s, re-apply {again:.2f} s, preview {preview:.2f} s"
        )
    print(f"ratio first apply / hand-written: {first / hand:.1f}x  (target <= 3x)")
    print(f"ratio first apply / hand UPDATE:  {first / update_floor:.1f}x  (the teams alone written onto every customer)")
    print(f"ratio re-apply / hand-written:    {again / hand:.1f}x  (target <= 3x)")
    print(f"ratio preview / hand-written:     {preview / hand:.1f}x")
    print(f"next day ({next_run.summary['changed']:,} changed): {next_day:.2f} s, {next_day / hand:.1f}x")
    print(f"peak memory (ru_maxrss): {peak_mb:.0f} MB (target < 1024 MB)")
    if wrong:
        sys.exit(1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_set_arguments(parser)
    parser.add_argument("--repeat", type=int, default=1, help="time re-apply, preview and hand-written N times; report the best")
    parser.add_argument("--repeat-first", type=int, default=1, help="time the first apply N times (undoing it in between); report the best")
    parser.add_argument("--profile", action="store_true", help="print the slowest statements of each phase")
    parser.add_argument("--tasks", action="store_true", help="time a first apply with task actions against one without")
    asyncio.run(main(parser.parse_args()))
