"""Engine and session setup for SQLite (aiosqlite, default) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy.engine import URL, CursorResult, Result, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from segmenta.domain.settings import number_setting
from segmenta.storage import error_translation, guard, sqlite_cursor, sqlite_writes, write_gate
from segmenta.storage.fair_pool import FairAsyncQueuePool

DEFAULT_DATABASE_FILE = "segmenta.db"


def database_url(url: str | None = None) -> str:
    """The configured database URL: argument, then SEGMENTA_DATABASE_URL, then a local SQLite file."""
    if url:
        return normalize_url(url)
    configured = os.environ.get("SEGMENTA_DATABASE_URL")
    if configured:
        return normalize_url(configured)
    return f"sqlite+aiosqlite:///{Path.cwd() / DEFAULT_DATABASE_FILE}"


def normalize_url(url: str) -> str:
    """Accept the plain driver names people type and pick the async drivers."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.drivername != "sqlite+aiosqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend == "postgresql" and parsed.drivername != "postgresql+asyncpg":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


BUSY_TIMEOUT_SETTING = "SEGMENTA_SQLITE_BUSY_TIMEOUT"
DEFAULT_BUSY_TIMEOUT = 10.0


def busy_timeout_from_environment(environ: Mapping[str, str] | None = None) -> float:
    """Seconds a SQLite write waits for the database's write lock before it fails as BUSY."""
    return number_setting(BUSY_TIMEOUT_SETTING, DEFAULT_BUSY_TIMEOUT, minimum=0, maximum=3600, environ=environ)


def _configure_sqlite(dbapi_connection: Any, _record: Any, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
    # The sqlite3 driver's own implicit BEGIN (only before DML) breaks SAVEPOINTs: a first
    # SAVEPOINT then opens the transaction itself and its RELEASE commits.  So the driver
    # stays in autocommit and SQLAlchemy emits BEGIN itself (_begin_sqlite).
    dbapi_connection.isolation_level = None
    # One trip to aiosqlite's thread per statement, not four (storage/sqlite_cursor.py).
    sqlite_cursor.use_one_trip_cursors(dbapi_connection)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
    cursor.execute("PRAGMA journal_mode=WAL")
    sqlite_cursor.note_journal_mode(dbapi_connection, str(cursor.fetchone()[0]))
    cursor.execute("PRAGMA synchronous=NORMAL")
    # The one-statement form of real-time routing's writes (storage/sqlite_writes.py).
    sqlite_writes.install(cursor)
    cursor.close()


WRITER_OPTION = "segmenta_writer"


def _begin_sqlite(connection: Any) -> None:
    # A deferred transaction that reads, then writes fails at once with "database is locked"
    # when another connection committed in between (busy_timeout cannot help a stale
    # snapshot); a writer therefore takes the write lock up front.
    writer = connection.get_execution_options().get(WRITER_OPTION, False)
    begin = "BEGIN IMMEDIATE" if writer else "BEGIN"
    # The BEGIN rides with the transaction's first statement (storage/sqlite_cursor.py): handed to the
    # driver connection directly, not run as a statement of its own through SQLAlchemy.
    if not sqlite_cursor.hold_begin(connection.connection.dbapi_connection, begin):
        connection.exec_driver_sql(begin)


async def begin_writer(session: AsyncSession) -> None:
    """Start the session's next transaction as a writer (on SQLite: BEGIN IMMEDIATE, one writer of
    the process at a time: storage/write_gate.py).

    Call it before a transaction that may read before it writes; PostgreSQL needs nothing.
    """
    gated = session.get_bind().dialect.name == "sqlite" and not session.in_transaction()
    if gated:
        await write_gate.enter(session, busy_timeout_from_environment())
    try:
        await session.connection(execution_options={WRITER_OPTION: True})
    except BaseException:
        if gated and not session.in_transaction():
            write_gate.leave(session)
        raise


async def begin_reader(session: AsyncSession) -> None:
    """Start the session's next transaction as a plain reader (on SQLite: a deferred BEGIN).

    Only needed on a session bound to one connection, where the option `begin_writer`
    set stays with the connection for the transactions after it.
    """
    await session.connection(execution_options={WRITER_OPTION: False})


POOL_SIZE_SETTING = "SEGMENTA_POOL_SIZE"
DEFAULT_POOL_SIZE = 5
POOL_OVERFLOW_SETTING = "SEGMENTA_POOL_OVERFLOW"
DEFAULT_POOL_OVERFLOW = 10


def pool_from_environment(environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """(pool size, overflow) of each process's connection pool: connections kept open, and how many
    more it may open under load (docs/cli.md, serve --workers)."""
    size = number_setting(POOL_SIZE_SETTING, DEFAULT_POOL_SIZE, minimum=1, maximum=1000, whole=True, environ=environ)
    overflow = number_setting(
        POOL_OVERFLOW_SETTING, DEFAULT_POOL_OVERFLOW, minimum=0, maximum=1000, whole=True, environ=environ
    )
    return size, overflow


def create_engine(url: str | None = None, **kwargs: Any) -> AsyncEngine:
    resolved = database_url(url)
    if "poolclass" not in kwargs and not is_private_memory(resolved):
        size, overflow = pool_from_environment()
        # Requests waiting for a connection get one in arrival order (storage/fair_pool.py).
        kwargs = {"pool_size": size, "max_overflow": overflow, "poolclass": FairAsyncQueuePool, **kwargs}
    if make_url(resolved).get_backend_name() == "sqlite":
        # Bounded reads run on the event loop's thread, not the connection's own (storage/sqlite_cursor.py):
        # the sqlite3 module must let a second thread use the connection (SQLite serialises it anyway).
        kwargs["connect_args"] = {"check_same_thread": False, **kwargs.get("connect_args", {})}
    engine = create_async_engine(resolved, **kwargs)
    if engine.dialect.name == "sqlite":
        busy_timeout = busy_timeout_from_environment()

        def configure(dbapi_connection: Any, record: Any) -> None:
            _configure_sqlite(dbapi_connection, record, busy_timeout=busy_timeout)

        event.listen(engine.sync_engine, "connect", configure)
        event.listen(engine.sync_engine, "begin", _begin_sqlite)
        event.listen(engine.sync_engine, "before_cursor_execute", sqlite_cursor.note_bounded_read)
    # Statement time limits, for the connections whose options ask for one (storage/guard.py).
    guard.install(engine)
    # A statement stopped by its limit raises TimedOut, a write that loses on a lock Busy
    # (storage/error_translation.py).
    error_translation.install(engine)
    return engine


def is_private_memory(url: str | URL) -> bool:
    """Whether `url` names an in-memory SQLite database, private to its process."""
    parsed = make_url(url)
    database = parsed.database or ""
    return parsed.get_backend_name() == "sqlite" and (
        not database or database == ":memory:" or database.startswith("file::memory:")
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def affected_rows(result: Result[Any]) -> int:
    """The rowcount of an INSERT/UPDATE/DELETE's result.

    AsyncSession.execute() is typed to return a plain Result for every statement; for DML it is a
    CursorResult at run time, the type that has rowcount.
    """
    return cast(CursorResult[Any], result).rowcount
