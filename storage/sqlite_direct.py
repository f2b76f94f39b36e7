"""Plain writes sent straight to the SQLite driver (aiosqlite), past SQLAlchemy's execution layer.

Why: through SQLAlchemy's aiosqlite adapter one statement costs four trips to the
driver's thread (create cursor, execute, fetch, close) plus an execution context;
aiosqlite's own ``executemany`` costs one trip.  On a busy machine a trip is 20–100 µs,
so for the few small INSERTs after a new customer's row (domain/realtime_create.py)
the trips were most of the time.

Only for statements whose result nobody reads — INSERT without RETURNING, UPDATE
whose row count is not needed — in the session's current transaction (and savepoint).
SQLAlchemy still compiles them (once per statement and column set) and the values go
through the column types' own bind processors, so what is stored is exactly what
``session.execute`` would store.  Database errors come back as SQLAlchemy's exceptions
(``IntegrityError``...), as from ``session.execute``.  What is not the same: SQLAlchemy's
execution events (``before_cursor_execute``, echo logging, ORM ``do_orm_execute``) do
not see these statements.

With another driver (or another database) :func:`write` runs the statement through
the session's Core connection instead — still not through the ORM events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert, UpdateBase


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
    if not rows:
        return
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    if not isinstance(driver, aiosqlite.Connection):
        await connection.execute(statement, list(rows))
        return
    dialect = connection.dialect
    prepared = _prepare(statement, tuple(rows[0]), dialect)
    parameters = [
        tuple(
            row[name] if processor is None else processor(row[name])
            for name, processor in zip(prepared.names, prepared.processors)
        )
        for row in rows
    ]
    try:
        await driver.executemany(prepared.sql, parameters)
    except dialect.loaded_dbapi.Error as error:
        raise DBAPIError.instance(
            prepared.sql, parameters, error, dialect.loaded_dbapi.Error, dialect=dialect
        ) from error
