"""Statement time limits, and the share of the connection pool expensive reads may hold.

Two guards keep one kind of request from starving every other:

* **Statement timeout.**  A connection whose execution options carry
  ``TIMEOUT_OPTION`` (seconds) has every statement stopped once it runs longer:
  PostgreSQL by ``SET statement_timeout`` on the connection when a transaction begins
  wanting another limit than the connection has (``_set_timeout``),
  SQLite by ``interrupt()`` on the raw connection from an event-loop timer (the
  statement itself runs in aiosqlite's thread, so the loop is free to fire it).
  The stopped statement raises ``domain.errors.TimedOut`` (storage/error_translation.py).  Only the GraphQL
  request sessions use a limited engine (``limit_statements``); runs, the
  scheduler, migrations and the CLI use the engine as created, and the run
  launcher removes any limit it is handed (``without_statement_limit``), because
  an apply over a large database is long by nature.
* **Expensive-read share.**  Reads whose cost grows with the database (a
  ``where`` condition over every customer, …) take a slot of a per-pool semaphore
  for the rest of their transaction (``hold_expensive_slot``).  At most half the
  pool by default; a request that finds the share used up waits a short time,
  then gets ``domain.errors.Busy`` instead of queueing on the pool until the
  pool's own timeout.  The other half of the pool is always there for cheap
  requests.

Settings (read here, once per process):

``SEGMENTA_STATEMENT_TIMEOUT``  seconds a request statement may run; ``off``/``0`` disables (default 15)
``SEGMENTA_EXPENSIVE_READS``    slots for concurrent expensive reads (default half the pool, at least 1)
``SEGMENTA_EXPENSIVE_READ_WAIT`` seconds a request waits for a slot before BUSY (default 2)
``SEGMENTA_WHERE_MAX_TERMS``    terms a ``where`` condition may hold (default 100; schema/where.py)
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import event
from sqlalchemy.engine import AdaptedConnection, Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.sql import Executable

from segmenta.domain.errors import Busy
from segmenta.domain.settings import number_setting

TIMEOUT_SETTING = "SEGMENTA_STATEMENT_TIMEOUT"
SHARE_SETTING = "SEGMENTA_EXPENSIVE_READS"
SHARE_WAIT_SETTING = "SEGMENTA_EXPENSIVE_READ_WAIT"
DEFAULT_STATEMENT_TIMEOUT = 15.0
DEFAULT_SHARE_WAIT = 2.0
MAX_TERMS_SETTING = "SEGMENTA_WHERE_MAX_TERMS"
DEFAULT_MAX_TERMS = 100

TIMEOUT_OPTION = "segmenta_statement_timeout"
# The opposite of an expensive read: a look-up by key of at most a page of rows, through an index.
# SQLite runs these on the event loop's thread (storage/sqlite_cursor.py); PostgreSQL ignores it.
BOUNDED_READ = "segmenta_bounded_read"
_SLOT_KEY = "segmenta_expensive_slot"
_TIMER_KEY = "segmenta_interrupt_timer"


StatementT = TypeVar("StatementT", bound=Executable)


def bounded_read(statement: StatementT) -> StatementT:
    """`statement` marked as a bounded read (BOUNDED_READ): only for a look-up by key through an index
    whose rows are at most a page's worth, never one whose cost grows with the database."""
    return statement.execution_options(**{BOUNDED_READ: True})


def statement_timeout_from_environment(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds a request statement may run (None: no limit), from SEGMENTA_STATEMENT_TIMEOUT."""
    return number_setting(TIMEOUT_SETTING, DEFAULT_STATEMENT_TIMEOUT, minimum=0, off=True, environ=environ)


@dataclass(frozen=True)
class ShareSettings:
    slots: int | None  # None: half the pool
    wait: float


def share_settings_from_environment(environ: Mapping[str, str] | None = None) -> ShareSettings:
    slots = number_setting(SHARE_SETTING, None, minimum=1, whole=True, unit="connections", environ=environ)
    wait = number_setting(SHARE_WAIT_SETTING, DEFAULT_SHARE_WAIT, minimum=0, environ=environ)
    return ShareSettings(slots=slots, wait=wait)


def max_terms_from_environment(environ: Mapping[str, str] | None = None) -> int:
    """The term limit of a `where` condition, from SEGMENTA_WHERE_MAX_TERMS."""
    return number_setting(MAX_TERMS_SETTING, DEFAULT_MAX_TERMS, minimum=1, whole=True, environ=environ)


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Raise domain.settings.SettingError naming the first bad guard setting (for a clear message at start-up)."""
    statement_timeout_from_environment(environ)
    share_settings_from_environment(environ)
    max_terms_from_environment(environ)


# ---------------------------------------------------------------------------
# Statement timeout
# ---------------------------------------------------------------------------


def limit_statements(engine: AsyncEngine, seconds: float | None) -> AsyncEngine:
    """The same engine (same pool) whose statements stop after `seconds` (None: unlimited)."""
    return engine.execution_options(**{TIMEOUT_OPTION: seconds})


def without_statement_limit(engine: AsyncEngine) -> AsyncEngine:
    return engine.execution_options(**{TIMEOUT_OPTION: None})


def _timeout_of(options: Mapping[str, Any]) -> float | None:
    seconds = options.get(TIMEOUT_OPTION)
    return float(seconds) if seconds else None


# In a PostgreSQL connection's `info` (which lives as long as the server connection): the
# statement_timeout, in milliseconds, last set on it.
_TIMEOUT_SET = "segmenta_statement_timeout_ms"


def _set_timeout(connection: Connection) -> None:
    """Give the transaction about to begin its limit (0: none), on the server connection itself.

    asyncpg's transaction starts with the first statement, so at this point none is open and the
    `SET` holds for the connection, not for one transaction: the connection keeps it while its
    users want the same limit (a run of request transactions pays one round trip, not one each), and
    the first user wanting another limit (a run, unlimited) sets its own.  A connection new to the pool
    has no value noted, so its server default is never trusted."""
    seconds = _timeout_of(connection.get_execution_options())
    wanted = 0 if seconds is None else max(1, round(seconds * 1000))
    pooled = connection.connection
    if pooled.info.get(_TIMEOUT_SET) != wanted:
        pooled.info.pop(_TIMEOUT_SET, None)  # unknown until the SET has succeeded
        driver = cast(AdaptedConnection, pooled.dbapi_connection)
        driver.run_async(lambda raw: raw.execute(f"SET statement_timeout = {wanted}"))
        pooled.info[_TIMEOUT_SET] = wanted


def _arm_interrupt(
    connection: Connection, _cursor: Any, _statement: str, _parameters: Any, context: Any, _many: bool
) -> None:
    seconds = _timeout_of(context.execution_options)
    if seconds is None:
        return
    driver = connection.connection.driver_connection  # None only on an invalidated connection
    assert driver is not None
    raw = driver._conn  # the sqlite3 connection inside aiosqlite
    # Runs in the event loop while the statement runs in aiosqlite's thread; interrupt() is
    # the one sqlite3 call meant to be made from another thread.
    context._segmenta_timer = asyncio.get_running_loop().call_later(seconds, _interrupt, raw, context)


def _interrupt(raw: sqlite3.Connection, context: Any) -> None:
    context._segmenta_interrupted = True
    raw.interrupt()


def _disarm_interrupt(
    _connection: Connection, _cursor: Any, _statement: str, _parameters: Any, context: Any, _many: bool
) -> None:
    timer = getattr(context, "_segmenta_timer", None)
    if timer is not None:
        timer.cancel()


@dataclass(frozen=True)
class FailedStatement:
    """What the time limit knows of a statement that failed (storage/error_translation.py reads it)."""

    limit: float | None  # the seconds it was allowed (None: no limit)
    interrupted: bool  # SQLite: the limit's timer interrupted it


NO_STATEMENT = FailedStatement(limit=None, interrupted=False)


def failed_statement(execution: Any) -> FailedStatement:
    """Disarm a failed statement's timer (it never reaches after_cursor_execute) and say what limit it ran under."""
    if execution is None:
        return NO_STATEMENT
    timer = getattr(execution, "_segmenta_timer", None)
    if timer is not None:
        timer.cancel()
    return FailedStatement(
        limit=_timeout_of(execution.execution_options),
        interrupted=bool(getattr(execution, "_segmenta_interrupted", False)),
    )


def install(engine: AsyncEngine) -> None:
    """Let connections of `engine` (and of its option copies) honour TIMEOUT_OPTION."""
    sync_engine = engine.sync_engine
    if engine.dialect.name == "postgresql":
        event.listen(sync_engine, "begin", _set_timeout)
    elif engine.dialect.name == "sqlite":
        event.listen(sync_engine, "before_cursor_execute", _arm_interrupt)
        event.listen(sync_engine, "after_cursor_execute", _disarm_interrupt)


# ---------------------------------------------------------------------------
# Expensive-read share
# ---------------------------------------------------------------------------


class ExpensiveReads:
    """At most `slots` transactions doing expensive reads at once on one pool."""

    def __init__(self, slots: int, wait: float) -> None:
        self.slots = slots
        self.wait = wait
        self._semaphore = asyncio.Semaphore(slots)

    @property
    def in_use(self) -> int:
        return self.slots - self._semaphore._value

    async def hold(self, session: AsyncSession) -> None:
        """Take a slot for the session's current transaction (begun here if need be).

        Released when that transaction ends (commit, rollback or close); a second call in the
        same transaction takes nothing more.  Raises Busy when no slot frees up within `wait`.
        """
        if _SLOT_KEY in session.sync_session.info:
            return
        try:
            await asyncio.wait_for(self._semaphore.acquire(), self.wait)
        except TimeoutError:
            raise Busy(
                f"the server is busy with other expensive reads ({self.slots} at a time); retry shortly",
                retry_after=max(1.0, self.wait),
            ) from None
        session.sync_session.info[_SLOT_KEY] = self._semaphore
        try:
            await session.connection()
        except BaseException:
            _release_slot(session.sync_session)
            raise


def _release_slot(session: Session) -> None:
    semaphore = session.info.pop(_SLOT_KEY, None)
    if semaphore is not None:
        semaphore.release()


@event.listens_for(Session, "after_transaction_end")
def _free_slot_at_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        _release_slot(session)


_shares: weakref.WeakKeyDictionary[Any, ExpensiveReads] = weakref.WeakKeyDictionary()


def _pool_capacity(engine: AsyncEngine) -> int | None:
    pool = engine.sync_engine.pool
    size = getattr(pool, "size", None)
    overflow = getattr(pool, "_max_overflow", 0)
    if not callable(size):
        return None
    return int(size()) + max(0, int(overflow))


def share_connections(engine: AsyncEngine, *, slots: int | None = None, wait: float | None = None) -> ExpensiveReads:
    """Set the expensive-read share of `engine`'s pool (defaults from the environment)."""
    settings = share_settings_from_environment()
    capacity = _pool_capacity(engine)
    chosen = slots or settings.slots or max(1, (capacity or 2) // 2)
    share = ExpensiveReads(chosen, settings.wait if wait is None else wait)
    _shares[engine.sync_engine.pool] = share
    return share


def forget_share(engine: AsyncEngine) -> None:
    """Drop the share set for `engine`'s pool; the next expensive read makes one from the environment."""
    _shares.pop(engine.sync_engine.pool, None)


def expensive_reads(engine: AsyncEngine) -> ExpensiveReads:
    """The share of `engine`'s pool (made from the environment on first use)."""
    share = _shares.get(engine.sync_engine.pool)
    return share if share is not None else share_connections(engine)


async def hold_expensive_slot(session: AsyncSession) -> None:
    """Before an expensive read: hold a slot of the session's pool share until the transaction ends."""
    bind = session.bind
    assert isinstance(bind, AsyncEngine), "an expensive read needs a session bound to an engine"
    await expensive_reads(bind).hold(session)
