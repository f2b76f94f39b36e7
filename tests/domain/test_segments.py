"""domain.routing.segments: manual segments and hand edits of their members."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.customers.profiles import create_customer, delete_customer
from segmenta.domain.errors import Conflict, NotFound, UserError
from segmenta.domain.routing.segments import (
    add_to_segment,
    create_segment,
    delete_segment,
    move_to_segment,
    remove_from_segment,
    segment_customer_ids,
    update_segment,
)
from segmenta.storage.models import Segment
from tests.domain.helpers import database_snapshot


async def _customers(session: AsyncSession, count: int) -> list[int]:
    return [(await create_customer(session, {"code": f"S{index}", "name": "S"})).id for index in range(count)]


async def _dynamic(session: AsyncSession, key: str) -> Segment:
    segment = Segment(key=key, name=key, kind="dynamic")
    session.add(segment)
    await session.flush()
    return segment


async def test_create_segment(session: AsyncSession) -> None:
    segment = await create_segment(session, {"key": "trade_fair_2024", "description": " met at the fair "})
    assert (segment.key, segment.name, segment.description, segment.kind) == (
        "trade_fair_2024",
        "trade_fair_2024",
        "met at the fair",
        "manual",
    )
    named = await create_segment(session, {"key": "beta", "name": "Beta testers", "kind": "manual"})
    assert named.name == "Beta testers"


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        ({}, "key", "required"),
        ({"key": "has space"}, "key", "invalid"),
        ({"key": "not"}, "key", "invalid"),
        ({"key": "ok", "kind": "dynamic"}, "kind", "invalid"),
        ({"key": "ok", "kind": "weird"}, "kind", "invalid"),
        ({"key": "ok", "name": "n" * 201}, "name", "too_long"),
        ({"key": "ok", "members": [1]}, "members", "invalid"),
        ({"key": "taken"}, "key", "conflict"),
    ],
)
async def test_create_segment_rejects_bad_input(
    session: AsyncSession, data: dict[str, Any], field: str, code: str
) -> None:
    await create_segment(session, {"key": "taken"})
    before = await database_snapshot(session)
    with pytest.raises(UserError) as raised:
        await create_segment(session, data)
    assert (raised.value.field, raised.value.code) == (field, code)
    assert await database_snapshot(session) == before


async def test_add_and_remove_are_idempotent(session: AsyncSession) -> None:
    first, second, third = await _customers(session, 3)
    await create_segment(session, {"key": "vip"})
    segment = await add_to_segment(session, "vip", [first, second, first])
    assert segment.key == "vip"
    assert await segment_customer_ids(session, "vip") == [first, second]
    await add_to_segment(session, "vip", [second, third])
    assert await segment_customer_ids(session, "vip") == [first, second, third]

    await remove_from_segment(session, "vip", [second])
    await remove_from_segment(session, "vip", [second])  # no longer a member: no error
    assert await segment_customer_ids(session, "vip") == [first, third]
    await add_to_segment(session, "vip", [])
    await remove_from_segment(session, "vip", [])
    await session.commit()
    assert await segment_customer_ids(session, "vip") == [first, third]


async def test_move_between_segments(session: AsyncSession) -> None:
    first, second, third = await _customers(session, 3)
    await create_segment(session, {"key": "leads"})
    await create_segment(session, {"key": "won"})
    await add_to_segment(session, "leads", [first, second])
    await add_to_segment(session, "won", [second])

    source, target = await move_to_segment(session, "leads", "won", [first, second, third])
    assert (source.key, target.key) == ("leads", "won")
    assert await segment_customer_ids(session, "leads") == []
    assert await segment_customer_ids(session, "won") == [first, second, third]
    await move_to_segment(session, "leads", "won", [first])  # again: same result
    assert await segment_customer_ids(session, "won") == [first, second, third]


async def test_unknown_customers_and_segments_write_nothing(session: AsyncSession) -> None:
    (known,) = await _customers(session, 1)
    await create_segment(session, {"key": "vip"})
    await create_segment(session, {"key": "other"})
    before = await database_snapshot(session)

    with pytest.raises(UserError) as unknown_customer:
        await add_to_segment(session, "vip", [known, 999998, 999999])
    assert unknown_customer.value.field == "customer_ids" and unknown_customer.value.code == "not_found"
    assert "999998" in unknown_customer.value.message and "999999" in unknown_customer.value.message
    with pytest.raises(NotFound) as unknown_segment:
        await add_to_segment(session, "nope", [known])
    assert unknown_segment.value.field == "segment_key"
    with pytest.raises(NotFound) as unknown_target:
        await move_to_segment(session, "vip", "nope", [known])
    assert unknown_target.value.field == "to_key"
    with pytest.raises(UserError) as same:
        await move_to_segment(session, "vip", "vip", [known])
    assert same.value.field == "to_key"
    with pytest.raises(UserError) as bad_ids:
        await remove_from_segment(session, "vip", ["1"])
    assert bad_ids.value.field == "customer_ids"
    with pytest.raises(UserError):
        await move_to_segment(session, "vip", "other", [known, 999999])
    assert await database_snapshot(session) == before


async def test_dynamic_segments_reject_hand_edits(session: AsyncSession) -> None:
    (customer,) = await _customers(session, 1)
    await _dynamic(session, "high_value")
    await create_segment(session, {"key": "manual_one"})
    before = await database_snapshot(session)
    for attempt in (
        add_to_segment(session, "high_value", [customer]),
        remove_from_segment(session, "high_value", [customer]),
        move_to_segment(session, "high_value", "manual_one", [customer]),
        move_to_segment(session, "manual_one", "high_value", [customer]),
    ):
        with pytest.raises(UserError) as raised:
            await attempt
        assert raised.value.code == "dynamic_segment"
    assert await database_snapshot(session) == before


async def test_deleting_a_customer_removes_memberships(session: AsyncSession) -> None:
    first, second = await _customers(session, 2)
    await create_segment(session, {"key": "vip"})
    await add_to_segment(session, "vip", [first, second])
    await delete_customer(session, first)
    assert await segment_customer_ids(session, "vip") == [second]


async def test_segment_key_conflict_is_reported_as_conflict(session: AsyncSession) -> None:
    await create_segment(session, {"key": "dup"})
    with pytest.raises(Conflict):
        await create_segment(session, {"key": "dup", "name": "again"})


async def test_update_segment_changes_only_the_keys_given(session: AsyncSession) -> None:
    created = await create_segment(session, {"key": "fair", "name": "Fair", "description": "met there"})
    updated = await update_segment(session, "fair", {"name": "Trade fair"})
    assert (updated.id, updated.key, updated.name, updated.description) == (created.id, "fair", "Trade fair", "met there")
    renamed = await update_segment(session, "fair", {"key": "fair_2025", "description": None})
    assert (renamed.key, renamed.description) == ("fair_2025", None)


async def test_update_and_delete_refuse_dynamic_segments_and_bad_input(session: AsyncSession) -> None:
    await _dynamic(session, "high_value")
    await create_segment(session, {"key": "fair"})
    before = await database_snapshot(session)
    for call in (
        lambda: update_segment(session, "high_value", {"name": "x"}),
        lambda: delete_segment(session, "high_value"),
    ):
        with pytest.raises(UserError) as refused:
            await call()
        assert (refused.value.field, refused.value.code) == ("segment_key", "dynamic_segment")
    with pytest.raises(Conflict):
        await update_segment(session, "fair", {"key": "high_value"})
    with pytest.raises(UserError) as unknown:
        await update_segment(session, "fair", {"kind": "dynamic"})
    assert unknown.value.field == "kind"
    with pytest.raises(NotFound):
        await delete_segment(session, "missing")
    assert await database_snapshot(session) == before


async def test_delete_segment_drops_memberships_and_keeps_customers(session: AsyncSession) -> None:
    ids = await _customers(session, 2)
    segment = await create_segment(session, {"key": "fair"})
    await add_to_segment(session, "fair", ids)
    assert await delete_segment(session, "fair") == segment.id
    assert await session.get(Segment, segment.id) is None
    created = await create_segment(session, {"key": "fair"})
    # SQLite may give the new segment the old id: its members must have gone with the old one.
    assert (created.key, await segment_customer_ids(session, "fair")) == ("fair", [])
