"""storage/guard.py: statement timeouts on both back ends, the expensive-read share, the settings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain.errors import Busy, TimedOut
from segmenta.domain.settings import SettingError
from segmenta.storage import guard
from segmenta.storage.engine import session_factory
from segmenta.storage.error_translation import translate

# Seconds of work, however fast the machine: SQLite counts through a recursive CTE, PostgreSQL sleeps.
SQLITE_SLOW = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
SQLITE_SHORT = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000) SELECT count(*) FROM n"
POSTGRES_SLOW = "SELECT pg_sleep(30)"
POSTGRES_SHORT = "SELECT pg_sleep(0.5)"


def _slow(engine: AsyncEngine) -> str:
    return SQLITE_SLOW if engine.dialect.name == "sqlite" else POSTGRES_SLOW


def _short(engine: AsyncEngine) -> str:
    return SQLITE_SHORT if engine.dialect.name == "sqlite" else POSTGRES_SHORT


async def test_a_statement_past_the_limit_is_stopped_with_timed_out(engine: AsyncEngine) -> None:
    limited = guard.limit_statements(engine, 0.2)
    loop = asyncio.get_running_loop()
    async with session_factory(limited)() as session:
        started = loop.time()
        with pytest.raises(TimedOut, match=r"0\.2 s limit"):
            # The statement alone would run for far longer than the test's own timeout.
            await asyncio.wait_for(session.execute(text(_slow(engine))), 60)
        stopped_after = loop.time() - started
        await session.rollback()
        # The connection is fine afterwards: the next statement of the same session runs.
        assert await session.scalar(text("SELECT 41 + 1")) == 42
    assert stopped_after < 30


async def test_the_engine_as_created_and_an_unlimited_copy_are_not_limited(engine: AsyncEngine) -> None:
    limited = guard.limit_statements(engine, 0.01)
    for unlimited in (engine, guard.without_statement_limit(limited)):
        async with session_factory(unlimited)() as session:
            # Half a second of work against a limit of 10 ms: only an unlimited connection finishes it.
            await session.execute(text(_short(engine)))


async def test_the_limit_of_one_transaction_does_not_stay_on_the_pooled_connection(engine: AsyncEngine) -> None:
    """PostgreSQL: the limit is set on the connection, and the next user wanting none (a run) unsets it."""
    async with session_factory(guard.limit_statements(engine, 0.05))() as session:
        with pytest.raises(TimedOut):
            await session.execute(text(_short(engine)))
    async with session_factory(engine)() as session:
        await session.execute(text(_short(engine)))


async def test_a_bad_statement_is_not_mistaken_for_a_timeout(engine: AsyncEngine) -> None:
    async with session_factory(guard.limit_statements(engine, 5))() as session:
        with pytest.raises(Exception) as raised:
            await session.execute(text("SELECT no_such_column FROM no_such_table"))
    assert not isinstance(raised.value, TimedOut)


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [(None, guard.DEFAULT_STATEMENT_TIMEOUT), ("", guard.DEFAULT_STATEMENT_TIMEOUT), ("2.5", 2.5), ("off", None), ("0", None)],
)
def test_statement_timeout_setting(raw: str | None, seconds: float | None) -> None:
    environ = {} if raw is None else {guard.TIMEOUT_SETTING: raw}
    assert guard.statement_timeout_from_environment(environ) == seconds


@pytest.mark.parametrize("raw", ["-1", "soon", "nan", "inf", "5s"])
def test_a_bad_statement_timeout_is_a_clear_error(raw: str) -> None:
    with pytest.raises(SettingError, match="SEGMENTA_STATEMENT_TIMEOUT must be a number of seconds"):
        guard.statement_timeout_from_environment({guard.TIMEOUT_SETTING: raw})


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({guard.SHARE_SETTING: "0"}, "SEGMENTA_EXPENSIVE_READS must be a whole number"),
        ({guard.SHARE_SETTING: "half"}, "SEGMENTA_EXPENSIVE_READS must be a whole number"),
        ({guard.SHARE_WAIT_SETTING: "off"}, "SEGMENTA_EXPENSIVE_READ_WAIT must be a number of seconds"),
        ({guard.SHARE_WAIT_SETTING: "-2"}, "SEGMENTA_EXPENSIVE_READ_WAIT must be a number of seconds"),
    ],
)
def test_bad_share_settings_are_clear_errors(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingError, match=message):
        guard.share_settings_from_environment(environ)


def test_share_settings() -> None:
    assert guard.share_settings_from_environment({}) == guard.ShareSettings(None, guard.DEFAULT_SHARE_WAIT)
    assert guard.share_settings_from_environment(
        {guard.SHARE_SETTING: "3", guard.SHARE_WAIT_SETTING: "0.5"}
    ) == guard.ShareSettings(3, 0.5)


@pytest.fixture
async def one_slot(engine: AsyncEngine) -> AsyncIterator[guard.ExpensiveReads]:
    share = guard.share_connections(engine, slots=1, wait=0.1)
    try:
        yield share
    finally:
        guard.forget_share(engine)


async def test_the_default_share_is_half_the_pool(engine: AsyncEngine) -> None:
    share = guard.share_connections(engine)
    try:
        # 5 pooled + 10 overflow connections by default: 7 for expensive reads, 8 always left for the rest.
        assert share.slots == 7
    finally:
        guard.forget_share(engine)


async def test_a_slot_is_held_for_the_transaction_and_freed_when_it_ends(
    engine: AsyncEngine, one_slot: guard.ExpensiveReads
) -> None:
    sessions = session_factory(engine)
    async with sessions() as holder:
        await guard.hold_expensive_slot(holder)
        await guard.hold_expensive_slot(holder)  # the same transaction: no second slot
        assert one_slot.in_use == 1
        async with sessions() as other:
            with pytest.raises(Busy) as busy:
                await guard.hold_expensive_slot(other)
            assert busy.value.retry_after is not None
        await holder.commit()
        assert one_slot.in_use == 0
        await guard.hold_expensive_slot(holder)
        assert one_slot.in_use == 1
    assert one_slot.in_use == 0  # closing the session ended its transaction


async def test_a_waiting_read_gets_the_slot_freed_within_the_wait(engine: AsyncEngine) -> None:
    share = guard.share_connections(engine, slots=1, wait=30)
    try:
        sessions = session_factory(engine)
        async with sessions() as holder, sessions() as waiter:
            await guard.hold_expensive_slot(holder)
            waiting = asyncio.ensure_future(guard.hold_expensive_slot(waiter))
            await asyncio.sleep(0.05)
            assert not waiting.done()
            await holder.rollback()
            await asyncio.wait_for(waiting, 30)
            assert share.in_use == 1
        assert share.in_use == 0
    finally:
        guard.forget_share(engine)


def test_a_pool_timeout_is_busy_and_other_errors_are_not() -> None:
    from sqlalchemy import exc

    assert isinstance(translate(exc.TimeoutError("QueuePool limit reached")), Busy)
    assert translate(ValueError("no")) is None


async def test_postgresql_sets_the_limit_once_for_a_run_of_transactions_wanting_it(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One round trip for the limit while a connection's users keep wanting the same one, not one per transaction."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's statement_timeout")
    import asyncpg

    sets: list[str] = []
    real = asyncpg.connection.Connection.execute

    async def counted(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        if query.startswith("SET statement_timeout"):
            sets.append(query)
        return await real(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.connection.Connection, "execute", counted)
    limited = guard.limit_statements(engine, 5)
    for _ in range(3):
        async with session_factory(limited)() as session:
            assert await session.scalar(text("SHOW statement_timeout")) == "5s"
    async with session_factory(engine)() as session:
        assert await session.scalar(text("SHOW statement_timeout")) == "0"
    async with session_factory(limited)() as session:
        assert await session.scalar(text("SHOW statement_timeout")) == "5s"
    # Each change of wanted limit on a pooled connection is one SET (the pool may hand out a second connection).
    assert 3 <= len(sets) <= 4, sets
