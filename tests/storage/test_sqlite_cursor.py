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


async def test_one_trip_per_statement_with_the_usual_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'trips.db'}")
    await upgrade(engine)
    trips = 0
    real = aiosqlite.Connection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal trips
        trips += 1
        return await real(self, fn, *args, **kwargs)

    async with session_factory(engine)() as session:
        raw = await session.connection()
        dbapi = (await raw.get_raw_connection()).dbapi_connection
        assert dbapi is not None and isinstance(dbapi.cursor(), OneTripCursor)
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
        added = await session.execute(insert(Team).values(key="a", name="A").returning(Team.id))
        assert added.scalar_one() >= 1
        await session.execute(insert(Team), [{"key": f"k{index}", "name": "K"} for index in range(3)])  # executemany
        changed = await session.execute(update(Team).where(Team.key.like("k%")).values(name="changed"))
        assert changed.rowcount == 3  # type: ignore[attr-defined]
        trips = 0
        names = (await session.execute(select(Team.key, Team.name).order_by(Team.key))).all()
        assert trips == 1
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
    trips = 0
    real = aiosqlite.Connection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal trips
        trips += 1
        return await real(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    async with session_factory(engine)() as session:
        await session.execute(select(Team.id))
        await session.execute(select(Team.key))
    # BEGIN and the first SELECT, then the second SELECT; the ROLLBACK is queued, not awaited.
    assert trips == 2
    trips = 0
    async with engine.connect() as connection:
        await connection.begin()
        await connection.rollback()
    assert trips == 0
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
