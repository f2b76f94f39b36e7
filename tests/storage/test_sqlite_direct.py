"""storage/sqlite_direct.py: writes sent straight to the driver store what session.execute stores,
fail with SQLAlchemy's exceptions, and belong to the session's transaction and savepoint."""

from __future__ import annotations

from datetime import datetime

import aiosqlite
import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.storage import sqlite_direct
from segmenta.storage.models import Customer, CustomerTag, EvaluationChange, EvaluationRun, Team

_changes = EvaluationChange.__table__
_INSERT_CHANGE = insert(_changes)
_INSERT_TAG = insert(CustomerTag.__table__)
_RENAME = update(Team.__table__).where(Team.__table__.c.id == bindparam("target")).values(name=bindparam("new_name"))


async def _run_and_customer(session: AsyncSession) -> tuple[int, int]:
    customer = Customer(code="c1", name="C1")
    run = EvaluationRun(mode="realtime", as_of=datetime(2026, 1, 2), summary={})
    session.add_all([customer, run])
    await session.flush()
    return run.id, customer.id


def _change(run_id: int, customer_id: int, rule: str) -> dict[str, object]:
    return {
        "run_id": run_id,
        "customer_id": customer_id,
        "team_before_id": None,
        "team_after_id": 7,
        "manager_before_id": None,
        "manager_after_id": None,
        "segments_added": ["vip", "华东"],
        "segments_removed": [],
        "tags_added": ["x"],
        "tags_removed": [],
        "deciding_rule": rule,
        "locked": True,
    }


async def test_stores_exactly_what_session_execute_stores(session: AsyncSession) -> None:
    run_id, customer_id = await _run_and_customer(session)
    await session.execute(_INSERT_CHANGE, [_change(run_id, customer_id, "through the session")])
    await sqlite_direct.write(session, _INSERT_CHANGE, [_change(run_id, customer_id, "direct")] * 2)
    rows = (await session.execute(select(_changes).order_by(_changes.c.id))).all()
    assert len(rows) == 3
    reference, *direct = [{k: v for k, v in row._mapping.items() if k not in ("id", "deciding_rule")} for row in rows]
    assert direct == [reference, reference]
    assert reference["segments_added"] == ["vip", "华东"] and reference["locked"] is True


async def test_an_update_with_its_own_parameters(session: AsyncSession) -> None:
    team = Team(key="one", name="One")
    session.add(team)
    await session.flush()
    await sqlite_direct.write(session, _RENAME, [{"target": team.id, "new_name": "Renamed"}])
    assert await session.scalar(select(Team.name).where(Team.id == team.id)) == "Renamed"


async def test_errors_are_sqlalchemy_exceptions_and_a_savepoint_takes_the_writes_back(session: AsyncSession) -> None:
    run_id, customer_id = await _run_and_customer(session)
    tag = {"customer_id": customer_id, "tag": "t", "source": "rule"}
    await sqlite_direct.write(session, _INSERT_TAG, [tag])
    with pytest.raises(IntegrityError):
        async with session.begin_nested():
            await sqlite_direct.write(session, _INSERT_CHANGE, [_change(run_id, customer_id, "undone")])
            await sqlite_direct.write(session, _INSERT_TAG, [tag])  # duplicate (customer, tag, source)
    assert (await session.scalars(select(CustomerTag.tag))).all() == ["t"]
    assert (await session.scalars(select(EvaluationChange.id))).all() == []
    await session.rollback()
    assert (await session.scalars(select(CustomerTag.tag))).all() == []


@pytest.mark.parametrize("one_trip", [True, False])
async def test_a_batch_runs_in_order_and_stops_at_the_failing_statement(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch, one_trip: bool
) -> None:
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("reads after a failed statement: only SQLite's transaction goes on")
    if not one_trip:  # as with an aiosqlite without the thread hand-off: a trip per statement
        monkeypatch.setattr(sqlite_direct, "_one_trip", lambda _driver: None)
    run_id, customer_id = await _run_and_customer(session)
    tag = {"customer_id": customer_id, "tag": "t", "source": "rule"}
    await sqlite_direct.write_all(
        session, [(_INSERT_TAG, [tag]), (_INSERT_CHANGE, []), (_INSERT_CHANGE, [_change(run_id, customer_id, "one")])]
    )
    with pytest.raises(IntegrityError) as raised:
        await sqlite_direct.write_all(
            session,
            [
                (_INSERT_CHANGE, [_change(run_id, customer_id, "two")]),
                (_INSERT_TAG, [tag]),  # duplicate (customer, tag, source)
                (_INSERT_CHANGE, [_change(run_id, customer_id, "never")]),
            ],
        )
    assert "customer_tags" in str(raised.value)
    rules = (await session.scalars(select(EvaluationChange.deciding_rule).order_by(EvaluationChange.id))).all()
    assert rules == ["one", "two"]


def test_this_aiosqlite_hands_a_batch_to_its_thread_in_one_trip() -> None:
    """If an upgrade drops it, write_all still works (a trip per statement) but is slower: look again."""
    assert callable(getattr(aiosqlite.Connection, "_execute", None))


async def test_a_missing_value_is_refused_rather_than_defaulted(session: AsyncSession) -> None:
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("elsewhere the statement goes through SQLAlchemy's Core connection, defaults included")
    run_id, customer_id = await _run_and_customer(session)
    row = _change(run_id, customer_id, "r")
    del row["locked"]  # has a Python-side default
    with pytest.raises(ValueError, match="locked"):
        await sqlite_direct.write(session, _INSERT_CHANGE, [row])
