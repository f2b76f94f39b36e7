"""SQLite statements take one trip to aiosqlite's thread each (storage/sqlite_cursor.py), and still
behave as with SQLAlchemy's own cursor: rows, row counts, inserted ids, executemany, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError

from segmenta.storage.engine import create_engine, session_factory
from segmenta.storage.migrate import upgrade
from segmenta.storage.models import Team
from segmenta.storage.sqlite_cursor import OneTripCursor


class Trips:
    """From its creation on, counts the calls aiosqlite runs on its thread (trips there and back)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = aiosqlite.Connection._execute

        async def counted(connection: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await real(connection, fn, *args, **kwargs)

        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)


async def test_one_trip_per_statement_with_the_usual_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'trips.db'}")
    await upgrade(engine)
    async with session_factory(engine)() as session:
        raw = await session.connection()
        dbapi = (await raw.get_raw_connection()).dbapi_connection
        assert dbapi is not None and isinstance(dbapi.cursor(), OneTripCursor)
        trips = Trips(monkeypatch)
        added = await session.execute(insert(Team).values(key="a", name="A").returning(Team.id))
        assert added.scalar_one() >= 1
        await session.execute(insert(Team), [{"key": f"k{index}", "name": "K"} for index in range(3)])  # executemany
        changed = await session.execute(update(Team).where(Team.key.like("k%")).values(name="changed"))
        assert changed.rowcount == 3  # type: ignore[attr-defined]
        trips.count = 0
        names = (await session.execute(select(Team.key, Team.name).order_by(Team.key))).all()
        assert trips.count == 1
        assert [tuple(row) for row in names] == [("a", "A"), ("k0", "changed"), ("k1", "changed"), ("k2", "changed")]
        assert (await session.execute(text("select count(*) from teams where name = :n"), {"n": "changed"})).scalar() == 3
        with pytest.raises(IntegrityError):
            await session.execute(insert(Team).values(key="a", name="again"))
        await session.rollback()
    await engine.dispose()


async def test_begin_rides_with_the_first_statement_and_an_empty_transaction_costs_no_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'begin.db'}")
    await upgrade(engine)
    async with session_factory(engine)() as session:  # a pooled connection, configured
        await session.execute(select(Team.id))
    trips = Trips(monkeypatch)
    async with session_factory(engine)() as session:
        await session.execute(select(Team.id))
        await session.execute(select(Team.key))
    # BEGIN and the first SELECT, then the second SELECT; the ROLLBACK waits for no trip (it runs on the
    # event loop's thread once the connection's own is idle, else it is queued there).
    assert trips.count == 2
    trips.count = 0
    async with engine.connect() as connection:
        await connection.begin()
        await connection.rollback()
    assert trips.count == 0
    # The held BEGIN really opens the transaction: a write inside it is undone by its rollback, and the
    # queued rollback has run before the next statement on the connection (which begins afresh).
    async with session_factory(engine)() as session:
        session.add(Team(key="undone", name="U"))
        await session.flush()
        await session.rollback()
        assert (await session.execute(select(Team).where(Team.key == "undone"))).first() is None
        session.add(Team(key="kept", name="K"))
        await session.commit()
    async with session_factory(engine)() as session:
        assert (await session.scalars(select(Team.key).where(Team.key.in_(["undone", "kept"])))).all() == ["kept"]
    await engine.dispose()


# -- bounded reads on the event loop's thread ------------------------------------------------


def _probe_threads(dbapi: Any, seen: list[int]) -> None:
    """A SQL function `probe()` that records the thread it runs on."""
    import threading

    def probe() -> int:
        seen.append(threading.get_ident())
        return 1

    dbapi.driver_connection._conn.create_function("probe", 0, probe)


async def _probed_session(engine: Any, seen: list[int]) -> Any:
    session = session_factory(engine)()
    raw = await (await session.connection()).get_raw_connection()
    _probe_threads(raw, seen)
    await session.rollback()
    return session


def _probe(bounded: bool) -> Any:
    from sqlalchemy import func

    statement = select(func.probe())
    return statement.execution_options(segmenta_bounded_read=True) if bounded else statement


async def test_a_bounded_read_runs_on_the_loop_thread_and_others_on_the_connection_thread(tmp_path: Path) -> None:
    import threading

    from sqlalchemy.pool import StaticPool

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}", poolclass=StaticPool)
    await upgrade(engine)
    seen: list[int] = []
    session = await _probed_session(engine, seen)
    loop_thread = threading.get_ident()
    assert (await session.execute(_probe(bounded=True))).scalar() == 1
    assert (await session.execute(_probe(bounded=False))).scalar() == 1
    await session.rollback()
    assert seen[0] == loop_thread and seen[1] != loop_thread
    # A writer's transaction (BEGIN IMMEDIATE waits for the write lock): its first statement goes to the thread.
    seen.clear()
    await session.connection(execution_options={"segmenta_writer": True})
    await session.execute(_probe(bounded=True))
    await session.execute(_probe(bounded=True))  # then, the lock held, reads may run inline
    await session.rollback()
    assert seen[0] != loop_thread and seen[1] == loop_thread
    await session.close()
    await engine.dispose()


async def test_a_bounded_read_waits_its_turn_behind_work_queued_on_the_connection(tmp_path: Path) -> None:
    """Calls on one connection keep their order: while anything is queued or running on its thread,
    a bounded read is queued behind it instead of overtaking it on the loop's thread."""
    import asyncio
    import threading
    import time

    from sqlalchemy.pool import StaticPool

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'order.db'}", poolclass=StaticPool)
    await upgrade(engine)
    seen: list[int] = []
    session = await _probed_session(engine, seen)
    aiosqlite_connection = (await (await session.connection()).get_raw_connection()).driver_connection
    order: list[str] = []

    def slow() -> None:
        time.sleep(0.2)
        order.append("slow")

    pending = asyncio.ensure_future(aiosqlite_connection._execute(slow))
    await asyncio.sleep(0)  # queued
    assert (await session.execute(_probe(bounded=True))).scalar() == 1
    order.append("read")
    await pending
    assert order == ["slow", "read"] and seen[-1] != threading.get_ident()
    await session.close()
    await engine.dispose()


async def test_without_wal_every_statement_stays_on_the_connection_thread() -> None:
    import threading

    engine = create_engine("sqlite+aiosqlite:///:memory:")  # journal_mode stays "memory"
    seen: list[int] = []
    session = await _probed_session(engine, seen)
    await session.execute(_probe(bounded=True))
    assert seen and seen[-1] != threading.get_ident()
    await session.close()
    await engine.dispose()


async def test_a_bounded_read_that_fails_fails_as_on_the_thread(tmp_path: Path) -> None:
    from sqlalchemy.exc import OperationalError

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'fail.db'}")
    await upgrade(engine)
    for bounded in (True, False):
        async with session_factory(engine)() as session:
            statement = text("select * from no_such_table")
            if bounded:
                statement = statement.execution_options(segmenta_bounded_read=True)
            with pytest.raises(OperationalError, match="no such table"):
                await session.execute(statement)
            # The transaction is still usable after the rollback.
            await session.rollback()
            assert (await session.execute(select(Team.id).execution_options(segmenta_bounded_read=True))).all() == []
    await engine.dispose()
