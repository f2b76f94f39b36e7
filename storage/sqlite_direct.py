"""Plain writes sent straight to the SQLite driver (aiosqlite), past SQLAlchemy's execution layer.

Why: through SQLAlchemy's aiosqlite adapter one statement costs four trips to the
driver's thread (create cursor, execute, fetch, close) plus an execution context;
here a whole batch of statements costs one trip (:func:`write_all`).  On a busy
machine a trip is 20–100 µs, so for the few small INSERTs after a new customer's row
(domain/routing/realtime_create.py) the trips were most of the time.

Only for statements whose result nobody reads — INSERT without RETURNING, UPDATE
whose row count is not needed — in the session's current transaction (and savepoint).
SQLAlchemy still compiles them (once per statement and column set) and the values go
through the column types' own bind processors, so what is stored is exactly what
``session.execute`` would store.  Database errors come back as SQLAlchemy's exceptions
(``IntegrityError``...), and lock contention as ``domain.errors.Busy``, as from ``session.execute``.  What is not the same: SQLAlchemy's
execution events (``before_cursor_execute``, echo logging, ORM ``do_orm_execute``) do
not see these statements.

With another driver (or another database) :func:`write` runs the statement through
the session's Core connection instead — still not through the ORM events.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert, UpdateBase

from segmenta.storage.contention import as_busy


@dataclass(frozen=True)
class _Prepared:
    sql: str
    names: tuple[str, ...]
    """The parameters in positional order."""
    processors: tuple[Callable[[Any], Any] | None, ...]


# Per (statement, column set, dialect class); the statement is kept so its id stays its own.
_prepared: dict[tuple[int, tuple[str, ...], type[Dialect]], tuple[UpdateBase, _Prepared]] = {}


def _prepare(statement: UpdateBase, keys: tuple[str, ...], dialect: Dialect) -> _Prepared:
    cache_key = (id(statement), keys, type(dialect))
    found = _prepared.get(cache_key)
    if found is not None:
        return found[1]
    # An INSERT names its columns by the keys given; other statements carry their own parameters.
    compiled = statement.compile(dialect=dialect, column_keys=list(keys) if isinstance(statement, Insert) else None)
    names = tuple(compiled.positiontup or ())
    missing = set(names) - set(keys)
    if missing:
        # A column default would have to be computed: not done here, so refused.
        raise ValueError(f"sqlite_direct.write needs a value for {sorted(missing)}")
    prepared = _Prepared(
        sql=str(compiled),
        names=names,
        processors=tuple(compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names),
    )
    _prepared[cache_key] = (statement, prepared)
    return prepared


async def write(session: AsyncSession, statement: UpdateBase, rows: Sequence[Mapping[str, Any]]) -> None:
    """Execute `statement` once per row of `rows` (every row with the same keys) in the session's transaction."""
    await write_all(session, [(statement, rows)])


async def write_all(session: AsyncSession, batch: Sequence[tuple[UpdateBase, Sequence[Mapping[str, Any]]]]) -> None:
    """`write` for several statements, in order, in one trip to the driver's thread.

    Statements without rows are skipped.  A failing statement raises (SQLAlchemy's
    exception for it) and the ones after it are not run; as with any failed statement,
    the caller rolls back (the transaction or a savepoint).
    """
    work = [(statement, rows) for statement, rows in batch if rows]
    if not work:
        return
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    if not isinstance(driver, aiosqlite.Connection):
        for statement, rows in work:
            await connection.execute(statement, list(rows))
        return
    dialect = connection.dialect
    prepared: list[tuple[str, list[tuple[Any, ...]]]] = []
    for statement, rows in work:
        found = _prepare(statement, tuple(rows[0]), dialect)
        prepared.append(
            (
                found.sql,
                [
                    tuple(
                        row[name] if processor is None else processor(row[name])
                        for name, processor in zip(found.names, found.processors, strict=True)
                    )
                    for row in rows
                ],
            )
        )
    run_in_driver_thread = _one_trip(driver)
    try:
        if run_in_driver_thread is None:
            for index, (sql, parameters) in enumerate(prepared):
                try:
                    await driver.executemany(sql, parameters)
                except Exception as error:
                    raise _Failed(index, error) from error
        else:
            await run_in_driver_thread(_execute_in_order, driver, prepared)
    except _Failed as failed:
        sql, parameters = prepared[failed.index]
        busy = as_busy(failed.error)  # what the engine's handle_error hook would have raised
        if busy is not None:
            raise busy from failed.error
        if isinstance(failed.error, dialect.loaded_dbapi.Error):
            raise DBAPIError.instance(
                sql, parameters, failed.error, dialect.loaded_dbapi.Error, dialect=dialect
            ) from failed.error
        raise failed.error from None


class _Failed(Exception):
    """Which statement of a batch failed, and how."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(index, error)
        self.index = index
        self.error = error


def _one_trip(driver: aiosqlite.Connection) -> Callable[..., Awaitable[Any]] | None:
    """aiosqlite's way to run a function in its thread (what its own methods use), if this version has it.

    Not public API (SQLAlchemy's adapter reaches into the same internals); without it
    every statement is a trip of its own, through the public ``executemany``.
    """
    run = getattr(driver, "_execute", None)
    return run if callable(run) else None


def _execute_in_order(driver: aiosqlite.Connection, prepared: Sequence[tuple[str, list[tuple[Any, ...]]]]) -> None:
    # Runs in the driver's thread, the only one that may use its sqlite3 connection.
    connection = driver._conn
    for index, (sql, parameters) in enumerate(prepared):
        try:
            connection.executemany(sql, parameters).close()
        except Exception as error:
            raise _Failed(index, error) from error
