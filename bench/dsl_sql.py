"""Benchmark: the compiled team CASE of a rule file against a hand-written CASE, on SQLite.

    .venv/bin/python bench/dsl_sql.py [--customers N] [--repeat R] [--path FILE]

Builds a SQLite file with N customers (one INSERT … SELECT over a recursive CTE),
then times, in the same run and on the same table, the team of every customer
computed (a) by the SQL compiler's CASE for six first-match rules and (b) by a
CASE statement written by hand for the same rules.  Each is measured two ways:
aggregated (`SELECT team, count(*) … GROUP BY team`, pure evaluation) and
materialised (`INSERT INTO temp table … SELECT id, team`, the shape of a routing
run).  The best of R runs is reported, with the ratio compiled / hand-written
(target: within 2×), and the two are checked to give identical team counts.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    create_engine,
    func,
    insert,
    select,
    text,
)

from segmenta.dsl.parser import parse
from segmenta.dsl.sql_compiler import compile_ruleset
from segmenta.storage.models import Base, Customer
from segmenta.storage.rule_fields import CustomerFields

AS_OF = datetime(2026, 3, 1, 12, 0)

RULES = """\
segment high_value = total_spent >= 100k or purchase_count >= 20
enterprise_east: size >= large and region = east -> team senior_sales
finance: industry in (finance, insurance) and high_value -> team finance_desk
recovery: days_since_purchase > 180 and open_complaints > 0 -> team customer_success
east_small: size = small and region = 华东 -> team east_standard
newcomers: lifecycle = new and purchase_count < 3 -> team onboarding
otherwise -> team general_pool
"""


def hand_written_case() -> str:
    """The same six rules as a person would write them (literals inline, no NULL guards)."""
    cutoff = (AS_OF - timedelta(days=181)).strftime("%Y-%m-%d %H:%M:%S.%f")
    return f"""CASE
        WHEN size IN ('large', 'enterprise') AND region = 'east' THEN 'senior_sales'
        WHEN industry IN ('finance', 'insurance') AND (total_spent >= 100000 OR purchase_count >= 20)
            THEN 'finance_desk'
        WHEN last_purchase_at <= '{cutoff}' AND open_complaints > 0 THEN 'customer_success'
        WHEN size = 'small' AND region = '华东' THEN 'east_standard'
        WHEN lifecycle = 'new' AND purchase_count < 3 THEN 'onboarding'
        ELSE 'general_pool' END"""


# Every column is a deterministic function of the id, so runs are comparable.
POPULATE = """
INSERT INTO customers (
    id, code, name, size, region, industry, lifecycle, purchase_count, total_spent, open_complaints,
    last_purchase_at, created_at, updated_at, assignment_locked, survey_count, survey_sum, nps_count,
    nps_sum, feedback_count, complaint_count, interaction_count)
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :customers)
SELECT
    i, 'C' || i, 'Customer ' || i,
    CASE (i * 7) % 5 WHEN 0 THEN 'small' WHEN 1 THEN 'medium' WHEN 2 THEN 'large' WHEN 3 THEN 'enterprise' END,
    CASE (i * 13) % 6 WHEN 0 THEN 'east' WHEN 1 THEN 'west' WHEN 2 THEN '华东' WHEN 3 THEN 'north'
                      WHEN 4 THEN 'south' END,
    CASE (i * 3) % 5 WHEN 0 THEN 'finance' WHEN 1 THEN 'insurance' WHEN 2 THEN 'retail' WHEN 3 THEN 'tech' END,
    CASE i % 4 WHEN 0 THEN 'new' WHEN 1 THEN 'active' WHEN 2 THEN 'loyal' ELSE 'at_risk' END,
    (i * 17) % 30,
    ((i * 7919) % 200000) * 1.0,
    (i * 11) % 4,
    CASE WHEN i % 10 = 0 THEN NULL
         ELSE strftime('%Y-%m-%d %H:%M:%S', '2026-03-01 12:00:00', '-' || ((i * 31) % 400) || ' days')
              || '.000000' END,
    '2020-01-01 00:00:00.000000', '2020-01-01 00:00:00.000000', 0, 0, 0.0, 0, 0.0, 0, 0, 0
FROM seq
"""


def build_database(path: Path, customers: int) -> None:
    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    indexes = list(Customer.__table__.indexes)
    with engine.begin() as connection:
        # A throwaway file: no journal, no fsync; indexes built once, after the rows.
        connection.exec_driver_sql("PRAGMA journal_mode=OFF")
        connection.exec_driver_sql("PRAGMA synchronous=OFF")
        for index in indexes:
            index.drop(connection)
        connection.execute(text(POPULATE), {"customers": customers})
        for index in indexes:
            index.create(connection)
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()


def best_of(repeat: int, run: Callable[[], Any]) -> tuple[float, Any]:
    best = float("inf")
    result: Any = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def compiled_team_select() -> Select[Any]:
    rule_file, diagnostics = parse(RULES)
    if any(d.is_error for d in diagnostics):
        raise SystemExit(f"benchmark rules do not parse: {diagnostics}")
    ruleset = compile_ruleset(rule_file, CustomerFields(), as_of=AS_OF)
    return select(Customer.id, ruleset.team.label("team"))


def measure(connection: Connection, repeat: int) -> dict[str, tuple[float, Any]]:
    compiled = compiled_team_select().subquery("routed")
    compiled_counts = select(compiled.c.team, func.count()).group_by(compiled.c.team)
    hand_counts = text(f"SELECT team, count(*) FROM (SELECT id, {hand_written_case()} AS team FROM customers) "
                       "GROUP BY team")

    def counts(statement: Any) -> Callable[[], dict[str, int]]:
        return lambda: dict(connection.execute(statement).all())

    routed = Table("routed_bench", MetaData(), Column("id", Integer), Column("team", String), prefixes=["TEMPORARY"])

    def materialise(statement: Any) -> Callable[[], int]:
        def run() -> int:
            routed.drop(connection, checkfirst=True)
            routed.create(connection)
            connection.execute(statement)
            return int(connection.execute(select(func.count()).select_from(routed)).scalar_one())
        return run

    create_compiled = insert(routed).from_select(["id", "team"], compiled_team_select())
    create_hand = text(f"INSERT INTO routed_bench (id, team) SELECT id, {hand_written_case()} FROM customers")
    return {
        "aggregate, compiled": best_of(repeat, counts(compiled_counts)),
        "aggregate, hand-written": best_of(repeat, counts(hand_counts)),
        "materialise, compiled": best_of(repeat, materialise(create_compiled)),
        "materialise, hand-written": best_of(repeat, materialise(create_hand)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--path", type=Path, default=None, help="SQLite file to build (default: a temporary file)")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        path = arguments.path or Path(scratch) / "bench-dsl-sql.db"
        if path.exists():
            path.unlink()
        started = time.perf_counter()
        build_database(path, arguments.customers)
        print(f"built {arguments.customers:,} customers in {time.perf_counter() - started:.1f} s ({path})")

        engine = create_engine(f"sqlite:///{path}")
        with engine.connect() as connection:
            results = measure(connection, arguments.repeat)
        engine.dispose()

    for name, (seconds, _) in results.items():
        print(f"{name:<28} {seconds:8.3f} s")
    for mode in ("aggregate", "materialise"):
        compiled, hand = results[f"{mode}, compiled"], results[f"{mode}, hand-written"]
        print(f"{mode}: compiled / hand-written = {compiled[0] / hand[0]:.2f}x")
    same = results["aggregate, compiled"][1] == results["aggregate, hand-written"][1]
    print(f"team counts identical: {'yes' if same else 'NO'}  {sorted(results['aggregate, compiled'][1].items())}")
    if not same:
        print(f"hand-written counts: {sorted(results['aggregate, hand-written'][1].items())}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
