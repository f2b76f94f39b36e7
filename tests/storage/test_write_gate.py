"""SQLite: a process's writers take turns in the event loop (storage/write_gate.py) before asking SQLite
for its write lock; the turn is given back whenever the transaction ends, however it ends."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain.errors import Busy
from segmenta.storage.engine import begin_writer, session_factory


@pytest.fixture
def sqlite_engine(engine: AsyncEngine) -> AsyncEngine:
    if engine.dialect.name != "sqlite":
        pytest.skip("the gate is SQLite's: PostgreSQL locks rows")
    return engine


async def test_writers_of_one_process_take_turns_first_come_first_served(sqlite_engine: AsyncEngine) -> None:
    inside: list[int] = []
    order: list[int] = []
    most = 0

    async def writer(number: int) -> None:
        nonlocal most
        async with session_factory(sqlite_engine)() as session:
            await begin_writer(session)
            inside.append(number)
            order.append(number)
            most = max(most, len(inside))
            await session.execute(text("SELECT 1"))
            await asyncio.sleep(0.005)
            inside.remove(number)
            await session.commit()

    tasks = []
    for number in range(12):
        tasks.append(asyncio.create_task(writer(number)))
        await asyncio.sleep(0)  # each asks in this order
    await asyncio.gather(*tasks)
    assert most == 1 and order == list(range(12))


@pytest.mark.parametrize("ending", ["commit", "rollback", "close", "error"])
async def test_the_turn_is_given_back_however_the_transaction_ends(sqlite_engine: AsyncEngine, ending: str) -> None:
    factory = session_factory(sqlite_engine)
    session = factory()
    await begin_writer(session)
    if ending == "commit":
        await session.commit()
    elif ending == "rollback":
        await session.rollback()
    elif ending == "error":
        with pytest.raises(Exception, match="no_such_table"):
            await session.execute(text("SELECT * FROM no_such_table"))
        await session.rollback()
    await session.close()
    async with factory() as other:
        await asyncio.wait_for(begin_writer(other), 2)  # not held by the first any more
        await other.commit()


async def test_a_writer_that_waits_past_the_busy_timeout_gets_busy(
    sqlite_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGMENTA_SQLITE_BUSY_TIMEOUT", "0.2")
    factory = session_factory(sqlite_engine)
    async with factory() as holder, factory() as waiter:
        await begin_writer(holder)
        with pytest.raises(Busy, match="SEGMENTA_SQLITE_BUSY_TIMEOUT"):
            await begin_writer(waiter)
        assert not waiter.in_transaction()
        await holder.commit()
        await begin_writer(waiter)  # its turn now
        await waiter.commit()


async def test_a_begin_that_fails_gives_the_turn_back(sqlite_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    factory = session_factory(sqlite_engine)

    async def refuse(*_args: object, **_kwargs: object) -> None:
        raise OSError("the database file went away")

    async with factory() as failing:
        monkeypatch.setattr(failing, "connection", refuse)
        with pytest.raises(OSError):
            await begin_writer(failing)
    async with factory() as next_one:
        await asyncio.wait_for(begin_writer(next_one), 2)
        await next_one.commit()
