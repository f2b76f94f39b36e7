"""Migration 0004 (exact money) upgrades a database made by 0003 with rows in it: every float amount becomes
whole cents, its shortest decimal reading rounded half to even to the cent, on both back ends."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.storage.engine import create_engine
from segmenta.storage.migrate import alembic_config, upgrade
from segmenta.storage.models import Customer, Employee, Purchase, Team
from tests.conftest import BACKENDS, _drop_postgres_schema, _postgres_engine


@pytest.fixture(params=BACKENDS)
async def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
        yield engine
        await engine.dispose()
        return
    schema = f"segmenta_migration_{uuid.uuid4().hex[:12]}"
    engine = await _postgres_engine(schema)
    yield engine
    await engine.dispose()
    await _drop_postgres_schema(schema)


def _upgrade_to(revision: str) -> object:
    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    return run


# Float values as 0003 stored them -> the exact amount 0004 keeps.
TOTALS = {
    "c1": (0.1 + 0.2, Decimal("0.30")),  # 0.30000000000000004
    "c2": (2054930.8200000005, Decimal("2054930.82")),
    "c3": (125196044.1799999, Decimal("125196044.18")),
    "c4": (0.125, Decimal("0.12")),  # a true half: to even
    "c5": (0.135, Decimal("0.14")),  # read as 0.135, a half: to even
    "c6": (0.0, Decimal("0.00")),
    "c7": (99999.99, Decimal("99999.99")),
}


async def test_0004_converts_every_money_column_exactly(empty_engine: AsyncEngine) -> None:
    async with empty_engine.begin() as connection:
        await connection.run_sync(_upgrade_to("0003"))  # type: ignore[arg-type]
        for code, (total, _) in TOTALS.items():
            await connection.execute(
                text("INSERT INTO customers (code, name, assignment_locked, purchase_count, total_spent, survey_count, "
                     "survey_sum, nps_count, nps_sum, feedback_count, complaint_count, open_complaints, interaction_count, "
                     "routing_version, created_at, updated_at) VALUES (:code, :code, false, 1, :total, 0, 0, 0, 0, 0, 0, 0, 0, "
                     "0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                {"code": code, "total": total},
            )
            await connection.execute(
                text("INSERT INTO purchases (customer_id, amount, purchased_at) "
                     "SELECT id, :amount, CURRENT_TIMESTAMP FROM customers WHERE code = :code"),
                {"code": code, "amount": total},
            )
        await connection.execute(
            text("INSERT INTO teams (key, name, kind, strategy, round_robin_position, created_at, monthly_target) "
                 "VALUES ('east', 'East', 'general', 'round_robin', 0, CURRENT_TIMESTAMP, 150000.1), "
                 "('west', 'West', 'general', 'round_robin', 0, CURRENT_TIMESTAMP, NULL)")
        )
        await connection.execute(
            text("INSERT INTO employees (name, email, level, specialties, regions, active, created_at, monthly_target) "
                 "VALUES ('Ann', 'ann@example.com', 'junior', '[]', '[]', true, CURRENT_TIMESTAMP, 40000.005)")
        )
    await upgrade(empty_engine)
    async with empty_engine.connect() as connection:
        version = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
        totals = dict((await connection.execute(select(Customer.code, Customer.total_spent))).all())
        amounts = dict((await connection.execute(
            select(Customer.code, Purchase.amount).join(Purchase, Purchase.customer_id == Customer.id)
        )).all())
        raw_cents = (await connection.execute(text("SELECT total_spent FROM customers WHERE code = 'c2'"))).scalar_one()
        targets = dict((await connection.execute(select(Team.key, Team.monthly_target))).all())
        employee_target = (await connection.execute(select(Employee.monthly_target))).scalar_one()
        # The index on total_spent is back, and serves an exact comparison.
        rich = (await connection.execute(
            select(Customer.code).where(Customer.total_spent >= Decimal("99999.99")).order_by(Customer.code)
        )).scalars().all()
    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()
    expected = {code: exact for code, (_, exact) in TOTALS.items()}
    assert totals == expected
    assert amounts == expected
    assert all(str(value) == str(expected[code]) for code, value in totals.items())  # two places, no float
    assert raw_cents == 205493082
    assert targets == {"east": Decimal("150000.10"), "west": None}
    assert employee_target == Decimal("40000.00")  # 40000.005 read as written: a half, to even
    assert rich == ["c2", "c3", "c7"]


async def test_0004_downgrades_back_to_floats(empty_engine: AsyncEngine) -> None:
    await upgrade(empty_engine)
    async with empty_engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO teams (key, name, kind, strategy, round_robin_position, created_at, monthly_target, active) "
                 "VALUES ('east', 'East', 'general', 'round_robin', 0, CURRENT_TIMESTAMP, 12345, true)")
        )
        await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0003"))
        target = (await connection.execute(text("SELECT monthly_target FROM teams"))).scalar_one()
    assert target == 123.45
