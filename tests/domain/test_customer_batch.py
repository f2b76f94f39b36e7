"""domain.customers.batch.update_customers: many update_customer calls in a fixed number of statements.

Its equivalence with update_customer row by row (routing included) is the property test of
tests/domain/test_csv_io.py; here: what it refuses, and what the session shows afterwards."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.customers.batch import update_customers
from segmenta.domain.customers.profiles import create_customer
from segmenta.domain.customers.records import get_customer, validate_customer_input
from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from segmenta.storage.models import AssignmentHistory, Customer, CustomerAttribute, CustomerTag
from tests.domain.helpers import database_snapshot
from tests.domain.routing_support import add_employee, add_team


def patch(**data: object) -> dict[str, object]:
    return validate_customer_input(data, creating=False)


async def test_a_rename_or_a_repeated_customer_is_refused_before_anything_is_written(session: AsyncSession) -> None:
    first = await create_customer(session, {"code": "A", "name": "A"})
    second = await create_customer(session, {"code": "B", "name": "B"})
    await session.commit()
    before = await database_snapshot(session)
    with pytest.raises(ValueError, match="renamed"):
        await update_customers(session, [(first.id, patch(name="New")), (second.id, patch(code="C"))])
    with pytest.raises(ValueError, match="at most once"):
        await update_customers(session, [(first.id, patch(name="One")), (first.id, patch(name="Two"))])
    assert await database_snapshot(session) == before


async def test_loaded_objects_show_the_update_and_the_routing(session: AsyncSession) -> None:
    ann = await add_employee(session, "Ann")
    team = await add_team(session, "east_desk", members=[ann])
    ruleset = await save_ruleset(session, "rules", "east: region = east -> team east_desk\n")
    await activate_ruleset(session, ruleset.id)
    customer = await create_customer(
        session, {"code": "A", "name": "A", "tags": ["old"], "attributes": {"tier": "gold", "keep": "me"}}
    )
    await session.commit()
    loaded = await get_customer(session, customer.id)
    changes = await update_customers(
        session, [(customer.id, patch(name="Renamed", region="east", tags=["new"], attributes={"tier": None}))]
    )
    assert [(c.customer_id, c.team_after, c.manager_after) for c in changes] == [(customer.id, team.id, ann.id)]
    assert (loaded.name, loaded.region, loaded.team_id, loaded.manager_id) == ("Renamed", "east", team.id, ann.id)
    tags = (await session.execute(select(CustomerTag.tag).where(CustomerTag.customer_id == customer.id))).scalars()
    attributes = (await session.execute(select(CustomerAttribute.key))).scalars()
    assert list(tags) == ["new"] and list(attributes) == ["keep"]
    assert await session.scalar(select(func.count()).select_from(AssignmentHistory)) == 1


async def test_a_customer_whose_columns_do_not_change_keeps_its_updated_at(session: AsyncSession) -> None:
    customer = await create_customer(session, {"code": "A", "name": "Same", "size": "large"})
    await session.commit()
    stamp = customer.updated_at
    await update_customers(session, [(customer.id, patch(name="Same", size="LARGE", tags=["t"]))])
    stored = (await session.execute(select(Customer.updated_at, Customer.size).where(Customer.id == customer.id))).one()
    assert tuple(stored) == (stamp, "large")
    await update_customers(session, [(customer.id, patch(name="Other"))])
    assert await session.scalar(select(Customer.updated_at).where(Customer.id == customer.id)) > stamp
