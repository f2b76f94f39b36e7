"""Lock contention reported by the database, turned into ``domain.errors.Busy`` in one place.

What counts as "the database could not give this write its lock in time":

* SQLite: SQLITE_BUSY / SQLITE_LOCKED ("database is locked", "database table is
  locked"): another connection held the write lock past the busy timeout, or a
  transaction that read first could not be upgraded to a writer;
* PostgreSQL: serialization_failure (40001), deadlock_detected (40P01) and
  lock_not_available (55P03, a ``lock_timeout`` or ``NOWAIT``).

Nothing was written by the failed statement's transaction once it is rolled back,
so the same request may simply be sent again: Busy is retryable, and the API
answers it with code BUSY instead of an internal error.  The engine raises it from
its ``handle_error`` hook (:func:`install`); code that talks to a driver directly
(storage/sqlite_direct.py) asks :func:`as_busy` itself.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain.errors import Busy

# Seconds a client is told to wait before sending the request again.
RETRY_AFTER = 1.0

_SQLITE_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_SQLITE_BUSY_MESSAGES = ("database is locked", "database table is locked", "database schema is locked")
_POSTGRES_STATES = {
    "40001": "a concurrent transaction changed the same rows",
    "40P01": "two transactions waited for each other's locks",
    "55P03": "a lock was not granted in time",
}


def _causes(error: BaseException) -> list[BaseException]:
    """The error and what it wraps (SQLAlchemy's DBAPIError.orig, the adapted driver error's cause)."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen and len(seen) < 6:
        seen.append(current)
        current = getattr(current, "orig", None) or current.__cause__
    return seen


def _sqlstate(error: BaseException) -> str | None:
    for attribute in ("sqlstate", "pgcode"):
        value: Any = getattr(error, attribute, None)
        if isinstance(value, str):
            return value
    return None


def as_busy(error: BaseException) -> Busy | None:
    """The Busy that `error` means, or None when it is not lock contention."""
    if isinstance(error, Busy):
        return error
    for cause in _causes(error):
        if isinstance(cause, sqlite3.Error):
            code = getattr(cause, "sqlite_errorcode", None)
            message = str(cause).lower()
            if (code is not None and code & 0xFF in _SQLITE_BUSY_CODES) or any(m in message for m in _SQLITE_BUSY_MESSAGES):
                return Busy("the database is busy with another write; retry shortly", retry_after=RETRY_AFTER)
        state = _sqlstate(cause)
        if state in _POSTGRES_STATES:
            return Busy(f"the database is busy: {_POSTGRES_STATES[state]}; retry shortly", retry_after=RETRY_AFTER)
    # SQLAlchemy's aiosqlite adapter re-raises sqlite3 errors as its own classes, keeping the message.
    message = str(getattr(error, "orig", error)).lower()
    if any(m in message for m in _SQLITE_BUSY_MESSAGES):
        return Busy("the database is busy with another write; retry shortly", retry_after=RETRY_AFTER)
    return None


def _raise_busy(context: ExceptionContext) -> None:
    busy = as_busy(context.original_exception)
    if busy is not None:
        raise busy from context.sqlalchemy_exception or context.original_exception


def install(engine: AsyncEngine) -> None:
    """Make every statement of `engine` that loses on a lock raise Busy."""
    event.listen(engine.sync_engine, "handle_error", _raise_busy)
