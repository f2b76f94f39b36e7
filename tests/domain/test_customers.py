"""domain.customers.profiles: create/update/delete, validation before writing, tags and attributes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.customers.activity import record_purchase
from segmenta.domain.customers.profiles import create_customer, delete_customer, update_customer
from segmenta.domain.customers.records import (
    get_customer_attributes,
    get_customer_by_code,
    get_customer_categories,
    get_customer_tags,
)
from segmenta.domain.errors import Conflict, NotFound, UserError
from segmenta.domain.routing import realtime_create
from segmenta.storage.models import Customer, CustomerAttribute, CustomerTag, Purchase
from tests.domain.helpers import database_snapshot
from tests.domain.test_realtime_create import racing_read

FULL_INPUT: dict[str, Any] = {
    "code": "  C-001 ",
    "name": "Acme Ltd",
    "kind": "company",
    "industry": "finance",
    "size": "LARGE",
    "region": "east",
    "city": "Shanghai",
    "country": "CN",
    "lifecycle": "at_risk",
    "purchasing_power": "high",
    "channel": "web",
    "email": "Buyer@Acme.example",
    "phone": "+86 21 1234",
    "address": "1 Bund Road",
    "age": 12,
    "gender": "n/a",
    "income": 1_000_000,
    "occupation": "manufacturer",
    "birthday": date(2000, 2, 29),
    "tags": ["vip", " vip ", "east"],
    "attributes": {"tier": "gold", "seats": 40, "gone": None},
    "created_at": datetime(2020, 5, 1, 12, 0),
}


async def test_create_customer_stores_every_field(session: AsyncSession) -> None:
    customer = await create_customer(session, FULL_INPUT)
    await session.commit()

    assert customer.id is not None
    assert customer.code == "C-001"
    assert customer.size == "large"
    assert customer.email == "buyer@acme.example"
    assert customer.lifecycle == "at_risk"
    assert customer.birthday == date(2000, 2, 29)
    assert customer.birthday_md == 229
    assert customer.created_at == datetime(2020, 5, 1, 12, 0)
    assert customer.purchase_count == 0 and customer.total_spent == 0.0 and customer.open_complaints == 0
    assert (await get_customer_tags(session, [customer.id]))[customer.id] == ["east", "vip"]
    assert (await get_customer_attributes(session, [customer.id]))[customer.id] == {"tier": "gold", "seats": 40.0}
    assert (await get_customer_by_code(session, "C-001")) is customer


async def test_create_customer_minimal_defaults(session: AsyncSession) -> None:
    before = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=5)
    customer = await create_customer(session, {"code": "M1", "name": "Min"})
    assert customer.size is None and customer.birthday_md is None and customer.assignment_locked is False
    assert customer.created_at >= before
    assert (await get_customer_tags(session, [customer.id]))[customer.id] == []


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        ({"name": "No code"}, "code", "required"),
        ({"code": "   ", "name": "Blank"}, "code", "required"),
        ({"code": "X"}, "name", "required"),
        ({"code": "X", "name": "N", "size": "huge"}, "size", "invalid"),
        ({"code": "X", "name": "N", "kind": "robot"}, "kind", "invalid"),
        ({"code": "X", "name": "N", "lifecycle": "dead"}, "lifecycle", "invalid"),
        ({"code": "X", "name": "N", "purchasing_power": "extreme"}, "purchasing_power", "invalid"),
        ({"code": "X" * 101, "name": "N"}, "code", "too_long"),
        ({"code": "X", "name": "N" * 201}, "name", "too_long"),
        ({"code": "X", "name": "N", "region": "r" * 101}, "region", "too_long"),
        ({"code": "X", "name": "N", "email": "not-an-email"}, "email", "invalid"),
        ({"code": "X", "name": "N", "age": -1}, "age", "out_of_range"),
        ({"code": "X", "name": "N", "age": "old"}, "age", "invalid"),
        ({"code": "X", "name": "N", "income": -5}, "income", "out_of_range"),
        ({"code": "X", "name": "N", "income": float("nan")}, "income", "invalid"),
        ({"code": "X", "name": "N", "age": True}, "age", "invalid"),
        ({"code": "X", "name": "N", "birthday": "31/01/2000"}, "birthday", "invalid"),
        ({"code": "X", "name": "N", "birthday": date.today() + timedelta(days=400)}, "birthday", "out_of_range"),
        ({"code": "X", "name": "N", "created_at": "yesterday"}, "created_at", "invalid"),
        ({"code": "X", "name": "N", "tags": ["ok", ""]}, "tags", "invalid"),
        ({"code": "X", "name": "N", "tags": "vip"}, "tags", "invalid"),
        ({"code": "X", "name": "N", "tags": ["t" * 101]}, "tags", "too_long"),
        ({"code": "X", "name": "N", "attributes": {"tier": ["a"]}}, "attributes", "invalid"),
        ({"code": "X", "name": "N", "attributes": {"flag": True}}, "attributes", "invalid"),
        ({"code": "X", "name": "N", "attributes": {"bad key": 1}}, "attributes", "invalid"),
        ({"code": "X", "name": "N", "attributes": ["tier"]}, "attributes", "invalid"),
        ({"code": "X", "name": "N", "team": "sales"}, "team", "invalid"),
        ({"code": "X", "name": "N", "name_typo": "sales"}, "name_typo", "invalid"),
    ],
)
async def test_create_customer_rejects_bad_input_and_writes_nothing(
    session: AsyncSession, data: dict[str, Any], field: str, code: str
) -> None:
    await create_customer(session, {"code": "EXISTING", "name": "Existing", "tags": ["a"]})
    before = await database_snapshot(session)
    with pytest.raises(UserError) as raised:
        await create_customer(session, data)
    assert (raised.value.field, raised.value.code) == (field, code)
    assert raised.value.message
    assert await database_snapshot(session) == before


async def test_create_customer_duplicate_code_conflicts(session: AsyncSession) -> None:
    await create_customer(session, {"code": "DUP", "name": "First"})
    before = await database_snapshot(session)
    with pytest.raises(Conflict) as raised:
        await create_customer(session, {"code": " DUP ", "name": "Second", "tags": ["x"]})
    assert raised.value.field == "code" and raised.value.code == "conflict"
    assert await database_snapshot(session) == before


async def test_unique_violation_lost_to_a_race_becomes_conflict(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a concurrent writer takes the code after the pre-check, the INSERT's error is a Conflict too."""
    await create_customer(session, {"code": "RACE", "name": "First"})
    await session.commit()

    # create_customer's pre-check is part of its first read (domain/routing/realtime_create.py).
    monkeypatch.setattr(realtime_create, "_read", racing_read(realtime_create._read))
    with pytest.raises(Conflict) as raised:
        await create_customer(session, {"code": "RACE", "name": "Second"})
    assert raised.value.field == "code"
    await session.rollback()
    codes = (await session.execute(select(Customer.code))).scalars().all()
    assert codes == ["RACE"]


async def test_update_customer_changes_only_given_keys(session: AsyncSession) -> None:
    customer = await create_customer(session, FULL_INPUT)
    updated = await update_customer(
        session,
        customer.id,
        {"region": "west", "city": None, "birthday": date(1990, 12, 24), "size": "Small"},
    )
    assert updated is customer
    assert (customer.region, customer.city, customer.size) == ("west", None, "small")
    assert customer.birthday_md == 1224
    assert customer.industry == "finance" and customer.name == "Acme Ltd"
    await update_customer(session, customer.id, {"birthday": None})
    assert customer.birthday is None and customer.birthday_md is None


async def test_update_customer_replaces_manual_tags_and_keeps_rule_tags(session: AsyncSession) -> None:
    customer = await create_customer(session, {"code": "T", "name": "Tags", "tags": ["a", "b"]})
    session.add(CustomerTag(customer_id=customer.id, tag="rule_made", source="rule"))
    await session.flush()

    await update_customer(session, customer.id, {"tags": ["b", "c"]})
    assert (await get_customer_tags(session, [customer.id]))[customer.id] == ["b", "c"]
    assert (await get_customer_tags(session, [customer.id], source=None))[customer.id] == ["b", "c", "rule_made"]

    await update_customer(session, customer.id, {"name": "Renamed"})
    assert (await get_customer_tags(session, [customer.id]))[customer.id] == ["b", "c"]

    await update_customer(session, customer.id, {"tags": None})
    assert (await get_customer_tags(session, [customer.id]))[customer.id] == []
    assert (await get_customer_tags(session, [customer.id], source="rule"))[customer.id] == ["rule_made"]


async def test_update_customer_merges_attributes(session: AsyncSession) -> None:
    customer = await create_customer(
        session, {"code": "A", "name": "Attrs", "attributes": {"tier": "gold", "seats": 10}}
    )
    await update_customer(session, customer.id, {"attributes": {"seats": "many", "tier": None, "new": 2.5, "x": None}})
    assert (await get_customer_attributes(session, [customer.id]))[customer.id] == {"seats": "many", "new": 2.5}
    rows = (await session.execute(select(CustomerAttribute).where(CustomerAttribute.key == "seats"))).scalars().all()
    assert [(row.text_value, row.number_value) for row in rows] == [("many", None)]
    await update_customer(session, customer.id, {"attributes": {"seats": 3}})
    assert (await get_customer_attributes(session, [customer.id]))[customer.id] == {"seats": 3.0, "new": 2.5}


async def test_update_customer_code_uniqueness(session: AsyncSession) -> None:
    first = await create_customer(session, {"code": "ONE", "name": "One"})
    await create_customer(session, {"code": "TWO", "name": "Two"})
    await update_customer(session, first.id, {"code": "ONE"})  # unchanged code is no conflict
    before = await database_snapshot(session)
    with pytest.raises(Conflict) as raised:
        await update_customer(session, first.id, {"code": "TWO", "name": "Changed"})
    assert raised.value.field == "code"
    assert await database_snapshot(session) == before
    await update_customer(session, first.id, {"code": "THREE"})
    assert first.code == "THREE"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"name": None}, "name"),
        ({"code": ""}, "code"),
        ({"size": "giant"}, "size"),
        ({"created_at": None}, "created_at"),
        ({"tags": [1]}, "tags"),
        ({"region": "ok", "attributes": {"k": object()}}, "attributes"),
        ({"manager_id": 3}, "manager_id"),
    ],
)
async def test_update_customer_rejects_bad_patch_and_writes_nothing(
    session: AsyncSession, patch: dict[str, Any], field: str
) -> None:
    customer = await create_customer(session, {"code": "U", "name": "Upd", "tags": ["keep"]})
    before = await database_snapshot(session)
    with pytest.raises(UserError) as raised:
        await update_customer(session, customer.id, patch)
    assert raised.value.field == field
    assert await database_snapshot(session) == before
    assert customer.region is None and customer.name == "Upd"


async def test_update_and_delete_unknown_customer(session: AsyncSession) -> None:
    with pytest.raises(NotFound) as raised:
        await update_customer(session, 424242, {"name": "x"})
    assert raised.value.field == "id" and raised.value.code == "not_found"
    with pytest.raises(NotFound):
        await delete_customer(session, 424242)


async def test_delete_customer_removes_dependent_rows(session: AsyncSession) -> None:
    keep = await create_customer(session, {"code": "KEEP", "name": "Keep", "tags": ["k"]})
    gone = await create_customer(
        session, {"code": "GONE", "name": "Gone", "tags": ["g"], "attributes": {"a": 1}}
    )
    await record_purchase(session, customer_id=gone.id, amount=5, category="c")
    await session.commit()

    await delete_customer(session, gone.id)
    await session.commit()
    assert (await session.execute(select(Customer.code))).scalars().all() == ["KEEP"]
    assert (await session.execute(select(CustomerTag.customer_id))).scalars().all() == [keep.id]
    assert (await session.execute(select(CustomerAttribute))).first() is None
    assert (await session.execute(select(Purchase))).first() is None


async def test_batched_reads_cover_every_requested_id(session: AsyncSession) -> None:
    first = await create_customer(session, {"code": "B1", "name": "B1", "tags": ["x"]})
    second = await create_customer(session, {"code": "B2", "name": "B2"})
    await record_purchase(session, customer_id=first.id, amount=1, category="tools")
    await record_purchase(session, customer_id=first.id, amount=1, category="tools")
    await record_purchase(session, customer_id=first.id, amount=1)
    ids = [first.id, second.id, first.id]
    assert await get_customer_tags(session, ids) == {first.id: ["x"], second.id: []}
    assert await get_customer_attributes(session, ids) == {first.id: {}, second.id: {}}
    assert await get_customer_categories(session, ids) == {first.id: {"tools"}, second.id: set()}
