"""Migration 0005: at most one open task per (customer, kind), enforced by the database on both back ends."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.storage.dml import insert_ignoring_duplicates
from segmenta.storage.models import Customer, Task

DUE = datetime(2026, 12, 10)


def _task(customer_id: int, kind: str = "call", status: str = "open") -> dict[str, object]:
    return {"customer_id": customer_id, "kind": kind, "title": kind, "due_at": DUE, "status": status,
            "source": "rule", "created_at": DUE}


async def _customer(engine: AsyncEngine) -> int:
    async with engine.begin() as connection:
        return (await connection.execute(insert(Customer).values(code="c1", name="C").returning(Customer.id))).scalar_one()


async def test_a_second_open_task_of_a_kind_is_refused(engine: AsyncEngine) -> None:
    customer_id = await _customer(engine)
    async with engine.begin() as connection:
        await connection.execute(insert(Task), [_task(customer_id), _task(customer_id, "visit")])
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(insert(Task).values(**_task(customer_id)))


async def test_done_and_cancelled_tasks_do_not_block_a_new_open_one(engine: AsyncEngine) -> None:
    customer_id = await _customer(engine)
    async with engine.begin() as connection:
        await connection.execute(insert(Task).values(**_task(customer_id)))
        await connection.execute(update(Task).values(status="done"))
        await connection.execute(insert(Task), [_task(customer_id, status="cancelled"), _task(customer_id)])
        statement = insert_ignoring_duplicates(connection.dialect.name, Task.__table__)
        # The rule action's insert: a duplicate open task is no error and no row.
        await connection.execute(statement, [_task(customer_id), _task(customer_id)])
        counts = dict((await connection.execute(select(Task.status, func.count()).group_by(Task.status))).all())
    assert counts == {"open": 1, "done": 1, "cancelled": 1}
