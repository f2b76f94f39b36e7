"""Exclusive locks that hold across server processes: for one transaction, or across several."""

from __future__ import annotations

import asyncio
import fcntl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable


async def hold_exclusive(session: AsyncSession, key: int, *, sqlite_first_write: Executable) -> None:
    """Wait until no other transaction holds `key`, then hold it until this transaction ends.

    PostgreSQL: a transaction-scoped advisory lock (row locks cannot guard rows that do not
    exist yet).  SQLite has one database-wide write lock: `sqlite_first_write`, a harmless
    write run as the transaction's first statement, takes it before anything is read (a read
    first would leave a stale snapshot that cannot be upgraded to a write).
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    else:
        await session.execute(sqlite_first_write)


# How often a waiting apply on SQLite tries the lock file again (seconds).
_LOCK_FILE_POLL = 0.05


@asynccontextmanager
async def held_across_transactions(session: AsyncSession, key: int, *, name: str) -> AsyncIterator[None]:
    """Hold `key` exclusively across several transactions of `session`, until the block ends.

    `session` must be bound to one connection for the whole block.  PostgreSQL: a
    session-level advisory lock of that connection (the server frees it if the
    process dies).  SQLite has no lock that outlives a transaction without blocking
    every writer, so the holder locks a file beside the database (``<database>.<name>.lock``,
    flock: freed by the operating system when the process dies); an in-memory
    database is private to its connection and needs none.  Waits as long as it takes.
    """
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        await session.commit()
        try:
            yield
        finally:
            await session.rollback()
            await session.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            await session.commit()
        return
    database = bind.engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        yield
        return
    handle = open(f"{database}.{name}.lock", "a+b")  # noqa: SIM115 — closed in the finally below
    try:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(_LOCK_FILE_POLL)
        yield
    finally:
        handle.close()  # closing the file releases the lock
