"""Transaction-scoped exclusive locks that hold across server processes."""

from __future__ import annotations

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
