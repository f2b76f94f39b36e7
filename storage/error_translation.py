"""Database errors the product expects, turned into domain errors in one place.

`TRANSLATIONS` is the one table of what a database error means to the domain; one ``handle_error``
hook per engine (:func:`install`) looks every failed statement's error up in it and raises the
domain error instead, and schema/errors.py asks the same table (:func:`translate`) about errors that
never reached a statement (a pool checkout that timed out).

* A statement stopped by its time limit (storage/guard.py) is ``TimedOut``: SQLite reports the
  interrupt the limit's timer made, PostgreSQL query_canceled (57014) for ``statement_timeout``.
* A write that could not get its lock in time is ``Busy``: SQLite SQLITE_BUSY / SQLITE_LOCKED
  ("database is locked", "database table is locked"), when another connection held the write
  lock past the busy timeout or a transaction that read first could not be upgraded to a writer;
  PostgreSQL serialization_failure (40001), deadlock_detected (40P01) and lock_not_available
  (55P03, a ``lock_timeout`` or ``NOWAIT``).
* A pool checkout that timed out is ``Busy`` too: the server is busy, not broken.

Nothing was written by the failed statement's transaction once it is rolled back, so the same
request may simply be sent again: both are retryable, and the API answers them with codes
TIMED_OUT and BUSY instead of an internal error.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain.errors import Busy, TimedOut, Unavailable
from segmenta.storage import guard

# Seconds a client is told to wait before sending a Busy request again.
RETRY_AFTER = 1.0

_QUERY_CANCELED = "57014"
_SQLITE_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_SQLITE_BUSY_MESSAGES = ("database is locked", "database table is locked", "database schema is locked")
_POSTGRES_LOCK_STATES = {
    "40001": "a concurrent transaction changed the same rows",
    "40P01": "two transactions waited for each other's locks",
    "55P03": "a lock was not granted in time",
}
_SQLITE_BUSY = "the database is busy with another write; retry shortly"


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


def _interrupted_by_its_limit(error: BaseException, statement: guard.FailedStatement) -> Unavailable | None:
    if statement.interrupted and "interrupt" in str(error).lower():
        return TimedOut(f"a statement ran past the {statement.limit:g} s limit and was stopped", retry_after=None)
    return None


def _postgres_statement_timeout(error: BaseException, statement: guard.FailedStatement) -> Unavailable | None:
    if _QUERY_CANCELED in (getattr(error, "sqlstate", None), getattr(error, "pgcode", None)) and (
        "statement timeout" in str(error)
    ):
        stated = f" {statement.limit:g} s" if statement.limit is not None else ""
        return TimedOut(f"a statement ran past the{stated} limit and was stopped", retry_after=None)
    return None


def _lost_on_a_lock(error: BaseException, _statement: guard.FailedStatement) -> Unavailable | None:
    for cause in _causes(error):
        if isinstance(cause, sqlite3.Error):
            code = getattr(cause, "sqlite_errorcode", None)
            message = str(cause).lower()
            if (code is not None and code & 0xFF in _SQLITE_BUSY_CODES) or any(m in message for m in _SQLITE_BUSY_MESSAGES):
                return Busy(_SQLITE_BUSY, retry_after=RETRY_AFTER)
        state = _sqlstate(cause)
        if state in _POSTGRES_LOCK_STATES:
            return Busy(f"the database is busy: {_POSTGRES_LOCK_STATES[state]}; retry shortly", retry_after=RETRY_AFTER)
    # SQLAlchemy's aiosqlite adapter re-raises sqlite3 errors as its own classes, keeping the message.
    message = str(getattr(error, "orig", error)).lower()
    if any(m in message for m in _SQLITE_BUSY_MESSAGES):
        return Busy(_SQLITE_BUSY, retry_after=RETRY_AFTER)
    return None


def _no_connection_free(error: BaseException, _statement: guard.FailedStatement) -> Unavailable | None:
    if isinstance(error, exc.TimeoutError):
        return Busy("no database connection became free in time; retry shortly", retry_after=RETRY_AFTER)
    return None


@dataclass(frozen=True)
class Translation:
    """A kind of database error (`recognise` answers its domain error, or None when it is not one)."""

    means: str
    recognise: Callable[[BaseException, guard.FailedStatement], Unavailable | None]


# In order: a statement stopped by its limit is TimedOut even where the back end words it like a lock.
TRANSLATIONS = (
    Translation("SQLite: the statement's time limit interrupted it", _interrupted_by_its_limit),
    Translation("PostgreSQL: statement_timeout cancelled it (57014)", _postgres_statement_timeout),
    Translation("SQLite busy or locked, PostgreSQL 40001 / 40P01 / 55P03", _lost_on_a_lock),
    Translation("the connection pool had no connection free in time", _no_connection_free),
)


def translate(error: BaseException, statement: guard.FailedStatement = guard.NO_STATEMENT) -> Unavailable | None:
    """The domain error `error` means, or None when it is none the product expects."""
    if isinstance(error, Unavailable):
        return error
    for translation in TRANSLATIONS:
        translated = translation.recognise(error, statement)
        if translated is not None:
            return translated
    return None


def _raise_translated(context: ExceptionContext) -> None:
    statement = guard.failed_statement(context.execution_context)
    translated = translate(context.original_exception, statement)
    if translated is not None:
        raise translated from context.sqlalchemy_exception or context.original_exception


def install(engine: AsyncEngine) -> None:
    """Make every statement of `engine` that fails in an expected way raise its domain error."""
    event.listen(engine.sync_engine, "handle_error", _raise_translated)
