"""Write statements that say the same thing on SQLite and PostgreSQL, each in its dialect's construct."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

_ignoring: dict[tuple[str, Table], Any] = {}


def insert_ignoring_duplicates(dialect_name: str, table: Table) -> Any:
    """INSERT … ON CONFLICT DO NOTHING into `table`: a row already there stays (built once per table).

    Both back ends support it; rows two writers insert at the same moment are then no error.
    """
    key = (dialect_name, table)
    statement = _ignoring.get(key)
    if statement is None:
        dialect_insert = postgresql_insert(table) if dialect_name == "postgresql" else sqlite_insert(table)
        statement = _ignoring[key] = dialect_insert.on_conflict_do_nothing()
    return statement
