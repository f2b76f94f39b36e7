"""One trip to aiosqlite's thread per SQLite statement, instead of four; none for a bounded read.

aiosqlite runs every call on the connection in a thread of its own; each call is a hop there and
back (a queue put, a thread wake-up, a loop callback), and on a busy machine each hop costs tens
of microseconds or more.  SQLAlchemy's aiosqlite cursor makes four per statement: open a cursor,
execute, fetch all rows, close the cursor.  For a small GraphQL request (a token from the cache,
a customer, its team) those hops were most of the time spent outside Python (bench/api.py;
docs/graphql.md, "API cost").

`OneTripCursor` does the same work in one call on the thread: open, execute, fetch every row,
close, and hands back the rows with the cursor's description, row count and last row id, which
is all SQLAlchemy reads from a buffered (non-streaming) cursor.  A transaction's `BEGIN` (storage/
engine.py hands it over with `hold_begin`: the driver stays in autocommit) takes no trip of its own: it is held and sent in
the trip of the transaction's first statement, and a rollback or commit with no statement sent since
the last one (a transaction that ran none, or the pool's reset of a connection its session already
rolled back) takes no trip at all.  A rollback that has something to end is queued without waiting for it
(`OneTripConnection.rollback`): the connection's calls run in order, so nothing can use the connection
before it, and a read-only request is spared a wake-up of the event loop.  SQLite's BEGIN takes no lock until the first statement anyway; a `BEGIN IMMEDIATE`
that cannot get the write lock fails with that statement instead (as BUSY, storage/error_translation.py).  Streaming (server-side) cursors
keep SQLAlchemy's own class.  A statement runs on aiosqlite's thread, so the event loop stays free,
and storage/guard.py's `interrupt()` of a statement past its time limit still works.

**Bounded reads run on the event loop's thread.**  A statement marked by storage/guard.py's
`bounded_read` is, by its author's promise, a look-up by key of at most a page of rows through an
index (the loaders' prebuilt statements, schema/loader_statements.py): microseconds of SQLite work,
less than the trip to the thread and back and the GIL hand-over that comes with it.  It runs inline
when nothing can make it wait or reorder it (`may_run_inline`): the database is in WAL mode, where a
read never waits for a writer; no BEGIN IMMEDIATE/EXCLUSIVE is pending (that waits for the write
lock); and nothing is queued or running on the connection's thread (`_ThreadWork` counts every call
aiosqlite queues and every call it finished), so calls keep their order and the sqlite3 connection
(opened with check_same_thread=False, storage/engine.py) has one user at a time.  A rollback, which
in WAL mode writes nothing, runs inline under the same conditions and is otherwise queued as above.
Every other statement, and every commit, goes to the thread as before.

`use_one_trip_cursors` switches one new DBAPI connection over (from the engine's `connect`
event, storage/engine.py): the connection's class becomes a subclass that only names this
cursor class.
"""

from __future__ import annotations

import collections
import functools
import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection, AsyncAdapt_aiosqlite_cursor

from segmenta.storage.guard import BOUNDED_READ

logger = logging.getLogger(__name__)

_Outcome = tuple[Any, int, int | None, list[Any] | None]
# On the aiosqlite connection: the BEGIN held for the next statement's trip, and whether a statement
# was sent since the last rollback or commit (any statement: a SAVEPOINT alone also opens a transaction).
_PENDING = "segmenta_pending_begin"
_SENT = "segmenta_sent"


# On the aiosqlite connection: whether it is in WAL mode, and its _ThreadWork.
_WAL = "segmenta_wal"
_WORK = "segmenta_thread_work"
_READER_BEGINS = frozenset({None, "BEGIN", "BEGIN DEFERRED"})


class _ThreadWork:
    """Calls queued for a connection's aiosqlite thread, and calls finished there.  Each count is
    written by one thread only (queued by the event loop's, done by aiosqlite's), so neither update
    can be lost; when they are equal nothing runs or waits to run on that connection's thread."""

    __slots__ = ("queued", "done")

    def __init__(self) -> None:
        self.queued = 0
        self.done = 0

    def idle(self) -> bool:
        return self.queued == self.done


def _counted(work: _ThreadWork, function: Any, *args: Any, **kwargs: Any) -> Any:
    """On aiosqlite's thread: `function`, then counted as done (also when it fails)."""
    try:
        return function(*args, **kwargs)
    finally:
        work.done += 1


def _count_thread_work(connection: Any) -> _ThreadWork:
    """Route every call aiosqlite queues for `connection` through _counted (its `_execute` is the one
    door: statements, commit, rollback, cursors), and answer the counts."""
    work = _ThreadWork()
    cls = type(connection)

    async def counted_execute(function: Any, *args: Any, **kwargs: Any) -> Any:
        work.queued += 1
        return await cls._execute(connection, _counted, work, function, *args, **kwargs)

    connection._execute = counted_execute
    setattr(connection, _WORK, work)
    return work


def may_run_inline(connection: Any, begin: str | None) -> bool:
    """Whether a call may run on the event loop's thread now: a WAL database (a read never waits for
    a lock), nothing queued or running on the connection's own thread (so the calls keep their order and
    the sqlite3 connection has one user at a time), and no BEGIN IMMEDIATE/EXCLUSIVE to send (that one
    waits for the write lock)."""
    work: _ThreadWork = getattr(connection, _WORK)
    return (
        begin in _READER_BEGINS
        and getattr(connection, _WAL, False)
        and work.idle()
        and connection._connection is not None
    )


def note_bounded_read(
    _connection: Any, cursor: Any, _statement: Any, _parameters: Any, context: Any, executemany: bool
) -> None:
    """SQLAlchemy's before_cursor_execute: tell the cursor its next statement is a bounded read."""
    if not executemany and context is not None and context.execution_options.get(BOUNDED_READ) is True:
        if isinstance(cursor, OneTripCursor):
            cursor._inline = True


def _run(raw: sqlite3.Connection, begin: str | None, operation: str, parameters: Any, many: bool) -> _Outcome:
    """On aiosqlite's thread: the statement's description, row count, last row id and rows."""
    if begin is not None:
        raw.execute(begin)
    cursor = raw.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


def _rollback_on_thread(raw: sqlite3.Connection) -> None:
    """A rollback nobody waits for: a failure (the connection was lost) can only be logged; the next
    statement on the connection then fails with the reason."""
    try:
        raw.rollback()
    except Exception:  # noqa: BLE001 - reported here, there is no caller left
        logger.exception("rolling back a SQLite connection failed")


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statements each take one call on aiosqlite's thread."""

    __slots__ = ("_description", "_rowcount", "_lastrowid", "_inline")

    def __init__(self, adapt_connection: Any) -> None:
        # No aiosqlite cursor is opened here (that was a hop of its own): each statement opens and
        # closes its sqlite3 cursor on the thread.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = {}  # type: ignore[assignment]
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._inline = False

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass

    async def _async_soft_close(self) -> None:
        """Nothing to close: the sqlite3 cursor was closed on the thread with the statement."""

    def close(self) -> None:
        self._rows.clear()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._one_trip(operation, parameters, many=False)
        return self

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        await self._one_trip(operation, seq_of_parameters, many=True)
        return self

    async def _one_trip(self, operation: Any, parameters: Any, *, many: bool) -> None:
        connection = self._connection
        inline, self._inline = self._inline, False
        async with self._adapt_connection._execute_mutex:
            begin = getattr(connection, _PENDING, None)
            setattr(connection, _PENDING, None)
            setattr(connection, _SENT, True)
            if inline and not many and may_run_inline(connection, begin):
                description, rowcount, lastrowid, rows = _run(connection._conn, begin, operation, parameters, many)
            else:
                description, rowcount, lastrowid, rows = await connection._execute(
                    _run, connection._conn, begin, operation, parameters, many
                )
        self._description, self._rowcount, self._lastrowid = description, rowcount, lastrowid
        self._rows = collections.deque(rows) if rows is not None else collections.deque()


def hold_begin(dbapi_connection: Any, begin: str) -> bool:
    """Hold `begin` for the next statement's trip (storage/engine.py's `begin` listener hands every
    transaction's BEGIN here); False (nothing held) for a connection of another class."""
    if not isinstance(dbapi_connection, OneTripConnection):
        return False
    setattr(dbapi_connection._connection, _PENDING, begin)
    return True


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor

    def rollback(self) -> None:
        if not self._statements_since_last_end():
            return
        connection = self._connection
        if not connection._running or connection._connection is None:
            super().rollback()  # closing: let aiosqlite say so
            return
        if may_run_inline(connection, None):
            # In WAL mode a rollback writes nothing to disk: it drops the transaction's pages and locks.
            try:
                connection._connection.rollback()
            except Exception as error:  # noqa: BLE001 - SQLAlchemy's adapter translates it
                self._handle_exception(error)
            return
        # Queued, not awaited: aiosqlite runs a connection's calls one after another in the order they
        # were queued, so whatever uses this connection next (the pool hands it out only after this)
        # runs after the rollback.  A read request so skips a wake-up of the event loop and the wait.
        work: _ThreadWork = getattr(connection, _WORK)
        work.queued += 1
        connection._tx.put_nowait((None, functools.partial(_counted, work, _rollback_on_thread, connection._connection)))

    def commit(self) -> None:
        if self._statements_since_last_end():
            super().commit()

    def _statements_since_last_end(self) -> bool:
        """Whether a statement was sent since the last rollback or commit: else there is nothing to end
        (the BEGIN held for a first statement that never came is dropped)."""
        connection = self._connection
        sent = bool(getattr(connection, _SENT, False))
        setattr(connection, _PENDING, None)
        setattr(connection, _SENT, False)
        return sent


def use_one_trip_cursors(dbapi_connection: Any) -> None:
    """Make this new aiosqlite DBAPI connection (SQLAlchemy's adapter) open OneTripCursors."""
    if type(dbapi_connection) is AsyncAdapt_aiosqlite_connection:
        # Same slots, one class attribute more: a well-defined class change.
        dbapi_connection.__class__ = OneTripConnection
        _count_thread_work(dbapi_connection._connection)


def note_journal_mode(dbapi_connection: Any, mode: str) -> None:
    """Record the connection's journal mode (bounded reads run on the loop's thread only under WAL)."""
    if isinstance(dbapi_connection, OneTripConnection):
        setattr(dbapi_connection._connection, _WAL, mode.lower() == "wal")
