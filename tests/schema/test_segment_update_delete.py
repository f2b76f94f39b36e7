"""updateSegment and deleteSegment through the API: manual segments only; a dynamic segment follows its
ruleset and is refused with DYNAMIC_SEGMENT; every refusal writes nothing.  World: `vip` is manual
(C000, C003), `high_value` dynamic."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.storage import models
from segmenta.storage.engine import session_factory
from tests.schema.helpers import Api, World, global_id
from tests.schema.test_staff_and_segment_mutations import refused

UPDATE = """mutation ($key: String!, $input: SegmentPatch!) { updateSegment(segmentKey: $key, input: $input) {
  segment { id key name description kind size } userErrors { field message code } } }"""
DELETE = """mutation ($key: String!) { deleteSegment(segmentKey: $key) { deletedId deletedKey userErrors { field message code } } }"""


async def test_update_renames_and_describes_a_manual_segment_keeping_its_members(api: Api, world: World) -> None:
    payload = (await api.data(UPDATE, {"key": "vip", "input": {"key": "top", "name": "Top", "description": "best"}}))
    assert payload["updateSegment"] == {
        "segment": {"id": global_id("Segment", world.segments["vip"]), "key": "top", "name": "Top",
                    "description": "best", "kind": "MANUAL", "size": 2},
        "userErrors": [],
    }
    cleared = (await api.data(UPDATE, {"key": "top", "input": {"description": None}}))["updateSegment"]["segment"]
    assert (cleared["name"], cleared["description"]) == ("Top", None)
    found = await api.data('{ where: customers(where: "top") { totalCount } }')
    assert found["where"]["totalCount"] == 2


@pytest.mark.parametrize(
    ("key", "patch", "field", "code"),
    [
        ("high_value", {"name": "Mine"}, "segmentKey", "DYNAMIC_SEGMENT"),
        ("nope", {"name": "X"}, "segmentKey", "NOT_FOUND"),
        ("vip", {"key": "high_value"}, "input.key", "CONFLICT"),
        ("vip", {"key": "not a key"}, "input.key", None),
        ("vip", {"name": None}, "input.name", "REQUIRED"),
    ],
)
async def test_update_refusals_write_nothing(
    api: Api, engine: AsyncEngine, world: World, key: str, patch: dict, field: str, code: str | None
) -> None:
    error = await refused(api, engine, UPDATE, {"key": key, "input": patch}, "updateSegment")
    assert error["field"] == field
    if code is not None:
        assert error["code"] == code


async def test_delete_removes_a_manual_segment_and_its_memberships_not_its_customers(
    api: Api, engine: AsyncEngine, world: World
) -> None:
    payload = (await api.data(DELETE, {"key": "vip"}))["deleteSegment"]
    assert payload == {"deletedId": global_id("Segment", world.segments["vip"]), "deletedKey": "vip", "userErrors": []}
    assert (await api.data('{ segment(key: "vip") { id } }'))["segment"] is None
    async with session_factory(engine)() as session:
        members = await session.scalar(
            select(func.count()).select_from(models.SegmentMember).where(models.SegmentMember.segment_id == world.segments["vip"])
        )
        customers = await session.scalar(select(func.count()).select_from(models.Customer))
    assert (members, customers) == (0, 6)
    # The key is free again.
    created = await api.data('mutation { createSegment(input: {key: "vip", name: "VIP"}) { segment { size } userErrors { code } } }')
    assert created["createSegment"] == {"segment": {"size": 0}, "userErrors": []}


async def test_a_dynamic_or_unknown_segment_is_not_deleted(api: Api, engine: AsyncEngine, world: World) -> None:
    error = await refused(api, engine, DELETE, {"key": "high_value"}, "deleteSegment")
    assert (error["field"], error["code"]) == ("segmentKey", "DYNAMIC_SEGMENT")
    assert error["message"] == (
        "segment 'high_value' is dynamic: it follows the ruleset that defines it; "
        "change or remove its definition in the rules instead"
    )
    error = await refused(api, engine, DELETE, {"key": "nope"}, "deleteSegment")
    assert (error["field"], error["code"]) == ("segmentKey", "NOT_FOUND")


@pytest.mark.parametrize("role", ["viewer"])
async def test_viewers_may_not_change_segments(api: Api, world: World, tokens: dict[str, str], role: str) -> None:
    [error] = await api.errors(DELETE, {"key": "vip"}, token=tokens[role])
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert (await api.data('{ segment(key: "vip") { key } }'))["segment"] == {"key": "vip"}
    manager = (await api.data(UPDATE, {"key": "vip", "input": {"name": "V"}}, token=tokens["manager"]))
    assert manager["updateSegment"]["userErrors"] == []
