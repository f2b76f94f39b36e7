"""CSV import cost: `segmenta import FILE` of new customers, then `segmenta import FILE --update` of all of them.

    .venv/bin/python bench/import_csv.py [--customers 10000] [--database-url URL]

On a fresh SQLite file (or, with `--database-url postgresql://...`, in a schema of its
own in that PostgreSQL database, created for the run and dropped after it) with the
10 teams, 30 employees and 50-rule ruleset of bench/realtime.py **active**:

1. `import (new)`: imports a CSV of `--customers` new customers (each routed in real
   time: team, manager, segments, rule tags, history);
2. exports every customer (`segmenta export`) and rewrites the `region` column of
   every row (east → west → north → south → central → east), so that every row changes
   and most customers move to another team (new manager, history, change rows);
3. `import --update`: imports that file with `--update`.

Both imports run what the command runs (cli.data.run_import: schema check, then the
domain import in one transaction, committed), timed end to end.  Prints seconds and
rows/s per step, and checks the outcome (every row updated, every region rewritten,
customers moved in real time) so a broken import cannot look fast.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import importlib.util
import io
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from segmenta.domain.customers.csv_export import export_customers
from segmenta.domain.customers.csv_import import ImportReport, import_customers
from segmenta.domain.routing.rulesets import activate_ruleset
from segmenta.storage.engine import normalize_url, session_factory
from segmenta.storage.migrate import upgrade
from segmenta.storage.models import AssignmentHistory, Customer


def _load_realtime_bench() -> Any:
    """bench/realtime.py (teams, employees, the 50-rule ruleset), loaded by path: bench/ is not a package."""
    spec = importlib.util.spec_from_file_location("bench_realtime", Path(__file__).resolve().parent / "realtime.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


realtime_bench = _load_realtime_bench()
REGIONS: list[str] = realtime_bench.REGIONS
NEXT_REGION = {region: REGIONS[(index + 1) % len(REGIONS)] for index, region in enumerate(REGIONS)}


def new_customers_csv(count: int) -> str:
    rng = random.Random(5)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = ["code", "name", "kind", "industry", "size", "region", "city", "lifecycle", "age", "income", "tags"]
    writer.writerow(columns)
    for index in range(count):
        data = realtime_bench.customer_data(rng, f"imp{index}")
        data["tags"] = ";".join(data["tags"])
        writer.writerow([data[column] for column in columns])
    return out.getvalue()


def rewrite_regions(exported: str) -> str:
    rows = list(csv.reader(io.StringIO(exported)))
    header = rows[0]
    position = header.index("region")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows[1:]:
        row[position] = NEXT_REGION[row[position]]
        writer.writerow(row)
    return out.getvalue()


async def prepare(url: str, schema: str | None) -> None:
    """Teams, employees and the 50-rule ruleset (bench/realtime.py), activated; no customers."""
    ruleset_id = await realtime_bench.prepare(url, schema, 0)
    engine = realtime_bench.bench_engine(url, schema)
    async with session_factory(engine)() as session:
        async with session.begin():
            await activate_ruleset(session, ruleset_id)
    await engine.dispose()


async def export_all(url: str, schema: str | None) -> str:
    engine = realtime_bench.bench_engine(url, schema)
    out = io.StringIO()
    async with session_factory(engine)() as session:
        await export_customers(session, out)
    await engine.dispose()
    return out.getvalue()


async def counts(url: str, schema: str | None) -> tuple[int, dict[str, int]]:
    engine = realtime_bench.bench_engine(url, schema)
    async with session_factory(engine)() as session:
        history = await session.scalar(select(func.count()).select_from(AssignmentHistory))
        regions = dict((await session.execute(select(Customer.region, func.count()).group_by(Customer.region))).all())
    await engine.dispose()
    return history or 0, regions


async def timed_import(url: str, schema: str | None, text: str, *, update: bool) -> tuple[float, ImportReport]:
    """What `segmenta import` runs (cli.data.run_import), on the bench's engine (its scratch schema)."""
    lines = iter(io.StringIO(text))
    started = time.perf_counter()
    engine = realtime_bench.bench_engine(url, schema)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            report = await import_customers(session, lines, mode="skip", update=update)
    finally:
        await engine.dispose()
    return time.perf_counter() - started, report


async def bench(url: str, schema: str | None, count: int) -> list[tuple[str, float]]:
    await prepare(url, schema)
    results: list[tuple[str, float]] = []
    seconds, report = await timed_import(url, schema, new_customers_csv(count), update=False)
    if report.imported != count or report.errors:
        raise SystemExit(f"import (new) went wrong: {report.imported} imported, errors {report.errors[:3]}")
    results.append(("import (new)", seconds))
    history_before, regions_before = await counts(url, schema)
    changed = rewrite_regions(await export_all(url, schema))
    seconds, report = await timed_import(url, schema, changed, update=True)
    if report.updated != count or report.errors:
        raise SystemExit(f"import --update went wrong: {report.updated} updated, errors {report.errors[:3]}")
    results.append(("import --update", seconds))
    history_after, regions_after = await counts(url, schema)
    expected_regions = {NEXT_REGION[region]: number for region, number in regions_before.items()}
    if regions_after != expected_regions:
        raise SystemExit(f"regions were not rewritten: {regions_after} != {expected_regions}")
    moved = history_after - history_before
    if moved < count // 2:
        raise SystemExit(f"only {moved} customers moved in real time on update: the benchmark is wrong")
    print(f"  customers moved in real time by the update: {moved}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10000, help="rows per import (default 10000)")
    parser.add_argument(
        "--database-url",
        help="PostgreSQL URL to measure there instead of a temporary SQLite file "
        "(the run works in a schema of its own, dropped at the end)",
    )
    args = parser.parse_args()
    if args.database_url:
        url = normalize_url(args.database_url)
        if not url.startswith("postgresql"):
            parser.error("--database-url must be a PostgreSQL URL (SQLite runs on a temporary file by default)")
        backend = "PostgreSQL"

        async def run_postgres() -> list[tuple[str, float]]:
            async with realtime_bench.scratch_schema(url) as schema:
                return await bench(url, schema, args.customers)

        results = asyncio.run(run_postgres())
    else:
        backend = "SQLite"
        with tempfile.TemporaryDirectory() as directory:
            url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
            results = asyncio.run(bench(url, None, args.customers))
    print(f"CSV import, {backend}, {args.customers} rows, active 50-rule ruleset")
    for step, seconds in results:
        print(f"  {step:<16} {seconds:8.2f} s   {args.customers / seconds:9.0f} rows/s")


if __name__ == "__main__":
    main()
