"""Real-time routing cost: a customer event with an active 50-rule ruleset vs. with none, one run.

    .venv/bin/python bench/realtime.py [--event create|purchase|update] [--customers 400] [--rounds 20]
        [--existing 5000] [--database-url URL]

On a fresh SQLite file (or, with `--database-url postgresql://...`, in a schema of its
own in that PostgreSQL database, created for the run and dropped after it) with 10
teams, 30 employees and `--existing` customers already routed, creates customers
through the domain service, each in its own transaction (`async with
session.begin(): create_customer(...)`, commit included), alternating rounds with no
active ruleset and with the 50-rule ruleset active, so both modes see the same
database growth (and, with many short rounds, the same bursts of load from whatever
else runs on the machine).  Prints per-call times and the ratio (target ≤ 1.5×).
With the ruleset active every created customer is routed: team, manager by the
team's strategy, dynamic segments, rule tags, history and the realtime run's change.

`--event purchase` (record_purchase) and `--event update` (update_customer: new
lifecycle, income and size) time that event instead, the same way, on existing
customers: every call takes a customer no earlier call touched, so with the ruleset
active each call is that customer's first real-time evaluation and moves it (the
existing customers' teams and managers are random, not the rules'): team, manager,
segments, tags, history and change, as for a created customer.  Needs `--existing`
of at least twice `--customers`.

Figures, before and after each change, with the commands: docs/routing.md, "Cost".
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain.customers.activity import record_purchase
from segmenta.domain.customers.profiles import create_customer, update_customer
from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from segmenta.storage.engine import create_engine, normalize_url, session_factory
from segmenta.storage.migrate import upgrade
from segmenta.storage.models import (
    AssignmentHistory,
    Customer,
    Employee,
    EvaluationChange,
    RulesetVersion,
    Team,
    TeamMember,
)

REGIONS = ["east", "west", "north", "south", "central"]
INDUSTRIES = ["finance", "retail", "tech", "health", "energy", "media"]
SIZES = ["small", "medium", "large", "enterprise"]
LIFECYCLES = ["prospect", "new", "active", "loyal", "at_risk"]
TEAMS = [f"team_{region}_{tier}" for region in REGIONS for tier in ("key", "std")]
EVENTS = {"create": "createCustomer", "purchase": "recordPurchase", "update": "updateCustomer"}


def fifty_rules() -> str:
    """10 segments, 34 team rules, 5 tag rules and `otherwise`: 50 statements."""
    lines = [
        "segment big = size >= large",
        "segment rich = income >= 200k",
        "segment mature = age >= 45",
        "segment young = age < 30",
        "segment fin = industry in (finance, insurance)",
        "segment techy = industry = tech",
        "segment fresh = lifecycle in (prospect, new)",
        "segment risky = lifecycle = at_risk",
        "segment buyer = purchase_count >= 1",
        "segment eastern = region in (east, central)",
    ]
    count = 0
    for region in REGIONS:
        for industry in INDUSTRIES[:3]:
            lines.append(
                f"r{count}: region = {region} and industry = {industry} and big -> team team_{region}_key, tag key_{industry}"
            )
            count += 1
        lines.append(f"r{count}: region = {region} and rich -> team team_{region}_key")
        count += 1
        lines.append(f"r{count}: region = {region} and (mature or fresh) and not risky -> team team_{region}_std")
        count += 1
        lines.append(f"r{count}: region = {region} and size = medium and income between 50k and 150k -> team team_{region}_std")
        count += 1
    for region in REGIONS[:4]:
        lines.append(f"r{count}: region = {region} -> team team_{region}_std")
        count += 1
    lines += [
        "t1: risky -> tag save_me",
        "t2: young and techy -> tag early_adopter",
        "t3: fin and rich -> tag private_banking",
        "t4: eastern and big -> tag east_key",
        "t5: city like \"New*\" -> tag new_city",
        "otherwise -> team team_central_std",
    ]
    assert len(lines) == 50, len(lines)
    return "\n".join(lines) + "\n"


def customer_data(rng: random.Random, code: str) -> dict[str, Any]:
    return {
        "code": code,
        "name": f"Customer {code}",
        "kind": "company",
        "industry": rng.choice(INDUSTRIES),
        "size": rng.choice(SIZES),
        "region": rng.choice(REGIONS),
        "city": rng.choice(["New York", "Shanghai", "Paris", "Newcastle"]),
        "lifecycle": rng.choice(LIFECYCLES),
        "age": rng.randint(20, 70),
        "income": rng.randint(10, 400) * 1000,
        "tags": rng.sample(["newsletter", "vip", "partner"], rng.randint(0, 2)),
    }


@asynccontextmanager
async def scratch_schema(url: str) -> AsyncIterator[str]:
    """A PostgreSQL schema of its own for the run (dropped after it): the database's data is never touched."""
    schema = f"bench_realtime_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    try:
        async with admin.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield schema
    finally:
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


def bench_engine(url: str, schema: str | None) -> AsyncEngine:
    if schema is None:
        return create_engine(url)
    return create_engine(url, connect_args={"server_settings": {"search_path": schema}})


async def prepare(url: str, schema: str | None, existing: int) -> int:
    engine = bench_engine(url, schema)
    await upgrade(engine)
    rng = random.Random(7)
    async with session_factory(engine)() as session:
        employees = [
            Employee(name=f"E{i}", email=f"e{i}@example.com", capacity=rng.choice([None, 2000]), regions=[REGIONS[i % 5]])
            for i in range(30)
        ]
        teams = [Team(key=key, name=key, strategy=("round_robin" if i % 2 else "least_loaded")) for i, key in enumerate(TEAMS)]
        session.add_all(employees + teams)
        await session.flush()
        for index, team in enumerate(teams):
            for offset in range(3):
                session.add(TeamMember(team_id=team.id, employee_id=employees[(index * 3 + offset) % 30].id))
        rows = []
        for index in range(existing):
            data = customer_data(rng, f"old{index}")
            data.pop("tags")
            rows.append({**data, "team_id": rng.choice(teams).id, "manager_id": rng.choice(employees).id})
        if rows:
            await session.execute(insert(Customer), rows)
        ruleset = await save_ruleset(session, "bench", fifty_rules())
        assert not ruleset.has_errors, ruleset.diagnostics
        await session.commit()
        ruleset_id = ruleset.id
    await engine.dispose()
    return ruleset_id


async def set_active(session: Any, ruleset_id: int, active: bool) -> None:
    async with session.begin():
        if active:
            await activate_ruleset(session, ruleset_id)
        else:
            await session.execute(update(RulesetVersion).values(status="archived"))


def event_calls(
    event: str, rng: random.Random, existing_ids: list[int]
) -> Callable[[int], Callable[[Any], Awaitable[Any]]]:
    """For the `serial`-th event, its domain call (its data drawn before the clock starts): a new
    customer, or an existing one no earlier call touched."""

    def create(serial: int) -> Callable[[Any], Awaitable[Any]]:
        data = customer_data(rng, f"new{serial}")
        return lambda session: create_customer(session, data)

    def purchase(serial: int) -> Callable[[Any], Awaitable[Any]]:
        customer_id, amount = existing_ids[serial - 1], rng.randint(1, 5000)
        return lambda session: record_purchase(session, customer_id=customer_id, amount=amount, category="bench")

    def update(serial: int) -> Callable[[Any], Awaitable[Any]]:
        customer_id = existing_ids[serial - 1]
        patch = {"lifecycle": rng.choice(LIFECYCLES), "income": rng.randint(10, 400) * 1000, "size": rng.choice(SIZES)}
        return lambda session: update_customer(session, customer_id, patch)

    return {"create": create, "purchase": purchase, "update": update}[event]


async def measure(
    url: str, schema: str | None, ruleset_id: int, per_round: int, rounds: int, event: str = "create"
) -> dict[str, list[float]]:
    engine = bench_engine(url, schema)
    rng = random.Random(11)
    times: dict[str, list[float]] = {"no active ruleset": [], "active 50-rule ruleset": []}
    serial = 0
    async with session_factory(engine)() as session:
        existing_ids: list[int] = []
        if event != "create":
            async with session.begin():
                existing_ids = list((await session.scalars(select(Customer.id).order_by(Customer.id))).all())
            random.Random(13).shuffle(existing_ids)
        next_call = event_calls(event, rng, existing_ids)
        for _round in range(rounds):
            for mode, active in (("no active ruleset", False), ("active 50-rule ruleset", True)):
                await set_active(session, ruleset_id, active)
                for _ in range(per_round):
                    serial += 1
                    call = next_call(serial)
                    started = time.perf_counter()
                    async with session.begin():
                        await call(session)
                    times[mode].append(time.perf_counter() - started)
                    session.expunge_all()
        # Every routed creation writes a history row; an existing customer's first evaluation
        # always writes a change row, and a history row only when its team or manager moves.
        routed_table = AssignmentHistory if event == "create" else EvaluationChange
        routed = await session.scalar(select(func.count()).select_from(routed_table))
    await engine.dispose()
    expected = per_round * rounds
    if not routed or routed < expected * 0.9:
        raise SystemExit(f"only {routed} of {expected} customers were routed in real time: the benchmark is wrong")
    return times


async def run_postgres(url: str, existing: int, per_round: int, rounds: int, event: str) -> dict[str, list[float]]:
    async with scratch_schema(url) as schema:
        ruleset_id = await prepare(url, schema, existing)
        return await measure(url, schema, ruleset_id, per_round, rounds, event)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--event", choices=list(EVENTS), default="create", help="the event timed (default create: a new customer)"
    )
    parser.add_argument("--customers", type=int, default=400, help="customers created (or events) per mode (default 400)")
    parser.add_argument("--rounds", type=int, default=20, help="alternating rounds (default 20)")
    parser.add_argument("--existing", type=int, default=5000, help="customers in the database first (default 5000)")
    parser.add_argument(
        "--database-url",
        help="PostgreSQL URL to measure there instead of a temporary SQLite file "
        "(the run works in a schema of its own, dropped at the end)",
    )
    args = parser.parse_args()
    per_round = max(1, args.customers // args.rounds)
    if args.event != "create" and args.existing < 2 * per_round * args.rounds:
        parser.error("--existing must be at least twice --customers: each event takes a customer not touched before")
    if args.database_url:
        url = normalize_url(args.database_url)
        if not url.startswith("postgresql"):
            parser.error("--database-url must be a PostgreSQL URL (SQLite runs on a temporary file by default)")
        times = asyncio.run(run_postgres(url, args.existing, per_round, args.rounds, args.event))
        backend = "PostgreSQL"
    else:
        with tempfile.TemporaryDirectory() as directory:
            url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
            ruleset_id = asyncio.run(prepare(url, None, args.existing))
            times = asyncio.run(measure(url, None, ruleset_id, per_round, args.rounds, args.event))
        backend = "SQLite"
    print(f"{EVENTS[args.event]} (domain call + commit, {backend}, {args.existing} existing customers), "
          f"{per_round * args.rounds} calls per mode in {args.rounds} alternating rounds")
    medians = {}
    for mode, samples in times.items():
        # The first calls of a round warm caches (compilation, statement cache): report both.
        median = statistics.median(samples)
        medians[mode] = median
        print(f"  {mode:<24} median {median * 1000:7.3f} ms   mean {statistics.fmean(samples) * 1000:7.3f} ms   "
              f"p95 {sorted(samples)[int(len(samples) * 0.95)] * 1000:7.3f} ms")
    ratio = medians["active 50-rule ruleset"] / medians["no active ruleset"]
    print(f"  ratio active / none (median): {ratio:.2f}x   (target <= 1.5x)")


if __name__ == "__main__":
    main()
