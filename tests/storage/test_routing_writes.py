"""storage/routing_writes.py: every form of the one write path (one statement on PostgreSQL, a row of the
routing view on SQLite, a statement per table) stores the same rows, in the session's transaction and
savepoint, and refreshes the Customer objects the session holds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.storage import routing_writes
from segmenta.storage.models import (
    AssignmentHistory,
    Customer,
    CustomerTag,
    Employee,
    EvaluationChange,
    EvaluationRun,
    Segment,
    SegmentMember,
    Team,
)
from segmenta.storage.routing_writes import CustomerAssignment, RoutingWrites, write_routing

NOW = datetime(2026, 1, 2, 3, 4, 5, 678901)
FORMS = ["native", "table by table"]


async def _world(session: AsyncSession, customers: int) -> dict[str, Any]:
    team = Team(key="one", name="One", strategy="round_robin")
    ann = Employee(name="Ann", email="ann@example.com")
    segments = [Segment(key=key, name=key, kind="dynamic") for key in ("vip", "华东", "old")]
    run = EvaluationRun(mode="realtime", as_of=datetime(2026, 1, 2), summary={})
    people = [Customer(code=f"c{n}", name=f"C{n}") for n in range(customers)]
    session.add_all([team, ann, run, *segments, *people])
    await session.flush()
    for person in people:
        session.add(SegmentMember(segment_id=segments[2].id, customer_id=person.id))
        session.add(CustomerTag(customer_id=person.id, tag="gone", source="rule"))
        session.add(CustomerTag(customer_id=person.id, tag="gone", source="manual"))
    await session.flush()
    return {
        "team": team.id,
        "ann": ann.id,
        "run": run.id,
        "segments": [segment.id for segment in segments],
        "customers": [person.id for person in people],
    }


def _writes(world: dict[str, Any], customer_ids: list[int]) -> RoutingWrites:
    vip, east, old = world["segments"]
    moved, stays = customer_ids[0], customer_ids[1:]
    writes = RoutingWrites(
        now=NOW,
        customers=[CustomerAssignment(moved, True, world["team"], world["ann"], "r1")]
        + [CustomerAssignment(customer_id, False) for customer_id in stays],
        positions=[(world["team"], 1)],
    )
    for customer_id in customer_ids:
        writes.segments_left.append((customer_id, old))
        writes.segments_joined += [(customer_id, vip), (customer_id, east)]
        writes.tags_removed.append((customer_id, "gone"))
        writes.tags_added += [(customer_id, "new"), (customer_id, "ünï")]
        writes.changes.append(
            {
                "run_id": world["run"],
                "customer_id": customer_id,
                "team_before_id": None,
                "team_after_id": world["team"] if customer_id == moved else None,
                "manager_before_id": None,
                "manager_after_id": world["ann"] if customer_id == moved else None,
                "segments_added": ["vip", "华东"],
                "segments_removed": ["old"],
                "tags_added": ["new", "ünï"],
                "tags_removed": ["gone"],
                "deciding_rule": "r1" if customer_id == moved else None,
                "locked": customer_id != moved,
            }
        )
    writes.history.append(
        {
            "customer_id": moved,
            "team_before_id": None,
            "team_after_id": world["team"],
            "manager_before_id": None,
            "manager_after_id": world["ann"],
            "cause": "realtime",
            "run_id": world["run"],
            "rule": "r1",
            "changed_at": NOW,
        }
    )
    return writes


async def _stored(session: AsyncSession, world: dict[str, Any]) -> dict[str, Any]:
    """The rows written, with the world's ids by name (PostgreSQL's sequences do not restart)."""
    names: dict[tuple[str, Any], str] = {("team", world["team"]): "team", ("employee", world["ann"]): "ann"}
    names[("run", world["run"])] = "run"
    names.update({("segment", segment_id): f"s{n}" for n, segment_id in enumerate(world["segments"])})
    names.update({("customer", customer_id): f"c{n}" for n, customer_id in enumerate(world["customers"])})
    kinds = {"team_id": "team", "team_before_id": "team", "team_after_id": "team", "manager_id": "employee"}
    kinds.update(manager_before_id="employee", manager_after_id="employee", run_id="run", segment_id="segment")
    kinds.update(customer_id="customer")

    def rows(result: Any) -> list[dict[str, Any]]:
        return [
            {k: names.get((kinds[k], v), v) if k in kinds else v for k, v in row._mapping.items() if k != "id"}
            for row in result
        ]

    return {
        "customers": rows(
            await session.execute(
                select(
                    Customer.code, Customer.team_id, Customer.manager_id, Customer.deciding_rule,
                    (Customer.updated_at == NOW).label("updated_now"), Customer.routing_version,
                ).order_by(Customer.code)
            )
        ),
        "members": rows(await session.execute(select(SegmentMember.segment_id, SegmentMember.added_at).order_by(SegmentMember.customer_id, SegmentMember.segment_id))),
        "tags": rows(await session.execute(select(CustomerTag.tag, CustomerTag.source).order_by(CustomerTag.customer_id, CustomerTag.tag, CustomerTag.source))),
        "changes": rows(await session.execute(select(EvaluationChange.__table__).order_by(EvaluationChange.customer_id))),
        "history": rows(await session.execute(select(AssignmentHistory.__table__).order_by(AssignmentHistory.customer_id))),
        "position": await session.scalar(select(Team.round_robin_position)),
    }


def _only_table_by_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routing_writes, "_in_one_statement", lambda session, writes: False)
    monkeypatch.setattr(routing_writes, "_through_view", lambda session: False)


@pytest.mark.parametrize("customers", [1, 3])
async def test_every_form_stores_the_same_rows(session: AsyncSession, monkeypatch: pytest.MonkeyPatch, customers: int) -> None:
    stored = {}
    for form in FORMS:
        world = await _world(session, customers)
        with monkeypatch.context() as patch:
            if form != "native":
                _only_table_by_table(patch)
            await write_routing(session, _writes(world, world["customers"]))
        session.expunge_all()
        stored[form] = await _stored(session, world)
        await session.rollback()
    native, reference = stored["native"], stored["table by table"]
    assert native == reference
    assert reference["customers"][0]["team_id"] == "team" and reference["customers"][0]["routing_version"] == 1
    assert {row["source"] for row in reference["tags"] if row["tag"] == "gone"} == {"manual"}
    assert reference["changes"][0]["segments_added"] == ["vip", "华东"] and reference["position"] == 1


@pytest.mark.parametrize("form", FORMS)
async def test_the_writes_belong_to_the_savepoint(session: AsyncSession, monkeypatch: pytest.MonkeyPatch, form: str) -> None:
    world = await _world(session, 1)
    if form != "native":
        _only_table_by_table(monkeypatch)
    with pytest.raises(RuntimeError):
        async with session.begin_nested():
            await write_routing(session, _writes(world, world["customers"]))
            raise RuntimeError("undo")
    assert (await session.scalars(select(EvaluationChange.id))).all() == []
    assert sorted((await session.scalars(select(CustomerTag.tag))).all()) == ["gone", "gone"]


@pytest.mark.parametrize("customers", [1, 3])
@pytest.mark.parametrize("form", FORMS)
async def test_the_customers_the_session_holds_show_what_was_written(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch, customers: int, form: str
) -> None:
    world = await _world(session, customers)
    held = await session.get(Customer, world["customers"][0])
    assert held is not None and held.team_id is None
    if form != "native":
        _only_table_by_table(monkeypatch)
    await write_routing(session, _writes(world, world["customers"]))
    assert (held.team_id, held.manager_id, held.deciding_rule, held.updated_at, held.routing_version) == (
        world["team"],
        world["ann"],
        "r1",
        NOW,
        1,
    )
