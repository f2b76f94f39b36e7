"""The demo dataset: deterministic, realistic, bulk-inserted, metrics consistent with its activity."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain.errors import Conflict
from segmenta.domain.seed import sample_rules, seed_database
from segmenta.domain.seed_generator import TEAMS, generate_dataset
from segmenta.domain.seed_words import CHINESE_REGIONS, REGIONS
from segmenta.dsl.money import to_cent
from segmenta.dsl.pipeline import check_source
from segmenta.storage.engine import session_factory
from segmenta.storage.models import (
    Customer,
    CustomerAttribute,
    CustomerTag,
    Employee,
    Feedback,
    Interaction,
    Purchase,
    Segment,
    SegmentMember,
    Team,
    TeamMember,
)

AS_OF = datetime(2026, 3, 15)


def test_same_seed_gives_the_same_dataset() -> None:
    assert generate_dataset(200, seed=7, as_of=AS_OF) == generate_dataset(200, seed=7, as_of=AS_OF)


def test_another_seed_gives_other_data() -> None:
    first = generate_dataset(200, seed=7, as_of=AS_OF)
    second = generate_dataset(200, seed=8, as_of=AS_OF)
    assert [c["name"] for c in first.customers] != [c["name"] for c in second.customers]


def test_dataset_is_realistic() -> None:
    data = generate_dataset(2000, seed=42, as_of=AS_OF)
    customers = data.customers
    assert len(customers) == 2000 and len({c["code"] for c in customers}) == 2000
    assert set(Counter(c["region"] for c in customers)) == set(REGIONS)
    for customer in customers:
        country, cities = REGIONS[customer["region"]]
        assert customer["city"] in cities and customer["country"] == country
        if customer["kind"] == "person":
            assert customer["birthday"] is not None and customer["size"] is None
            age_from_birthday = (AS_OF.date() - customer["birthday"]).days // 365
            assert abs(age_from_birthday - customer["age"]) <= 1
            assert customer["birthday_md"] == customer["birthday"].month * 100 + customer["birthday"].day
        else:
            assert customer["size"] in ("small", "medium", "large", "enterprise") and customer["birthday"] is None
    # Chinese names in Chinese regions, English names elsewhere.
    chinese = [c for c in customers if c["region"] in CHINESE_REGIONS]
    assert all(not c["name"].isascii() for c in chinese)
    assert all(c["name"].isascii() for c in customers if c["region"] not in CHINESE_REGIONS)

    spent: dict[str, Decimal] = defaultdict(Decimal)
    two_years_ago = AS_OF - timedelta(days=731)
    for purchase in data.purchases:
        spent[purchase["customer_code"]] += purchase["amount"]
        assert isinstance(purchase["amount"], Decimal) and purchase["amount"] == to_cent(purchase["amount"])
        assert two_years_ago <= purchase["purchased_at"] <= AS_OF
    high_value = sum(1 for total in spent.values() if total >= 100_000)
    assert 0.03 * len(customers) <= high_value <= 0.3 * len(customers)
    prospects = {c["code"] for c in customers if c["lifecycle"] == "prospect"}
    assert prospects and not prospects & set(spent)

    open_complaints = [f for f in data.feedback if f["kind"] == "complaint" and f["status"] in ("open", "in_progress")]
    assert open_complaints and all(f["resolved_at"] is None for f in open_complaints)
    for feedback in data.feedback:
        if feedback["kind"] == "survey":
            assert 1 <= feedback["score"] <= 5
        elif feedback["kind"] == "nps":
            assert 0 <= feedback["score"] <= 10
        else:
            assert feedback["score"] is None
    assert {key for _, key, _, _ in data.attributes} >= {"tier", "source"}

    assert len(data.employees) == 40 and len({e["email"] for e in data.employees}) == 40
    assert [team["key"] for team in data.teams] == [spec.key for spec in TEAMS]
    leaders = Counter(team for team, _, role in data.team_members if role == "leader")
    assert all(leaders[spec.key] == 1 for spec in TEAMS)


def test_sample_rules_check_clean_against_the_seeded_teams() -> None:
    result = check_source(sample_rules(), known_teams=[spec.key for spec in TEAMS])
    assert result.ok, result.errors
    assert not [d for d in result.diagnostics if d.severity == "warning"]
    routed = {action.target for statement in result.rule_file.statements for action in getattr(statement, "actions", ()) if action.kind == "team"}
    assert routed == {spec.key for spec in TEAMS}


async def _count(engine: AsyncEngine, model: type) -> int:
    async with session_factory(engine)() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def test_seed_writes_the_dataset_and_its_metrics(engine: AsyncEngine) -> None:
    data = generate_dataset(300, seed=3, as_of=AS_OF)
    steps: list[str] = []
    async with session_factory(engine)() as session:
        async with session.begin():
            summary = await seed_database(
                session, customers=300, seed=3, as_of=AS_OF, progress=lambda step, done, total: steps.append(step)
            )
    assert summary.customers == 300 and summary.purchases == len(data.purchases)
    assert "customers" in steps and "purchases" in steps and steps[-1] == "metrics"
    expected_counts = {
        Customer: 300,
        Purchase: len(data.purchases),
        Feedback: len(data.feedback),
        Interaction: len(data.interactions),
        Employee: 40,
        Team: len(TEAMS),
        TeamMember: len(data.team_members),
        Segment: 3,
        SegmentMember: len(data.segment_members),
        CustomerTag: len(data.tags),
        CustomerAttribute: len(data.attributes),
    }
    for model, expected in expected_counts.items():
        assert await _count(engine, model) == expected, model.__name__

    # The maintained metric columns agree with the generated activity (computed here independently).
    purchases: dict[str, list[dict]] = defaultdict(list)
    for purchase in data.purchases:
        purchases[purchase["customer_code"]].append(purchase)
    open_complaints = Counter(
        f["customer_code"] for f in data.feedback if f["kind"] == "complaint" and f["status"] in ("open", "in_progress")
    )
    interactions = Counter(i["customer_code"] for i in data.interactions)
    async with session_factory(engine)() as session:
        rows = (await session.execute(select(Customer))).scalars().all()
    assert len(rows) == 300
    for customer in rows:
        bought = purchases[customer.code]
        assert customer.purchase_count == len(bought)
        assert customer.total_spent == pytest.approx(sum(p["amount"] for p in bought))
        assert customer.last_purchase_at == (max(p["purchased_at"] for p in bought) if bought else None)
        assert customer.open_complaints == open_complaints[customer.code]
        assert customer.interaction_count == interactions[customer.code]


async def test_seeding_twice_needs_force(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        async with session.begin():
            await seed_database(session, customers=50, seed=1, as_of=AS_OF)
    with pytest.raises(Conflict, match="--force"):
        async with session_factory(engine)() as session:
            async with session.begin():
                await seed_database(session, customers=80, seed=1, as_of=AS_OF)
    assert await _count(engine, Customer) == 50

    async with session_factory(engine)() as session:
        async with session.begin():
            await seed_database(session, customers=80, seed=1, as_of=AS_OF, force=True)
    assert await _count(engine, Customer) == 80
    assert await _count(engine, Employee) == 40
