"""SQLite transactions that read before they write must not fail under concurrent writers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select, text

from segmenta.storage.engine import begin_writer, create_engine, normalize_url, session_factory
from segmenta.storage.migrate import upgrade
from segmenta.storage.models import Team


def test_plain_urls_choose_the_async_drivers() -> None:
    assert normalize_url("sqlite:///x.db").startswith("sqlite+aiosqlite://")
    assert normalize_url("postgresql://u@h/db").startswith("postgresql+asyncpg://")


async def test_read_then_write_writers_take_turns_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'concurrent.db'}")
    await upgrade(engine)
    sessions = session_factory(engine)

    async def read_then_write(index: int) -> None:
        async with sessions() as session:
            await begin_writer(session)
            existing = len((await session.scalars(select(Team))).all())
            await asyncio.sleep(0.01)  # let the other writers interleave between the read and the write
            session.add(Team(key=f"team_{index}_{existing}", name="t"))
            await session.commit()

    await asyncio.gather(*(read_then_write(index) for index in range(6)))
    async with engine.connect() as connection:
        keys = (await connection.execute(text("select key from teams"))).scalars().all()
    await engine.dispose()
    # Each writer saw every earlier commit: the counts it read are 0..5, one each.
    assert sorted(int(key.rsplit("_", 1)[1]) for key in keys) == list(range(6))
