"""SQLite's one-statement form of a routed customer's writes: a row inserted into a temporary view.

PostgreSQL writes one customer's routing (its assignment and routing version, segment
memberships, rule tags, attributes, change and history rows, round-robin positions) in
one statement of data-modifying CTEs.  SQLite has no data-modifying CTEs, and through
SQLAlchemy's aiosqlite adapter every statement costs three trips to the driver's thread
(cursor, execute, close: 50–150 µs each on a busy machine), so one statement per table
made routing a customer several times dearer than the routing itself.

So each SQLite connection gets, when it opens (storage/engine.py), a temporary view
``segmenta_routing_writes`` and an INSTEAD OF INSERT trigger on it: inserting one row
per customer (:data:`ROUTING_WRITES`, an ordinary SQLAlchemy ``insert`` through the
session, several customers as one executemany) runs the same writes as the PostgreSQL
statement, inside the same statement.  Lists travel as JSON arrays (``json_each``
unpacks them, as ``unnest`` does on PostgreSQL); scalar values are bound with their
column's SQLAlchemy type, so what the trigger stores is exactly what an INSERT of the
same values through the session stores.  Rows a concurrent writer already wrote or
removed are no error (ON CONFLICT DO NOTHING; deletes of rows already gone delete
nothing).

Temporary objects live in the connection's ``temp`` schema: migrations, the schema and
other connections never see them.  Adding a column to ``evaluation_changes`` or
``assignment_history`` needs nothing here: their columns are copied from the models.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Column, DateTime, Integer, MetaData, String, Table, insert, literal_column, select

from segmenta.storage.models import AssignmentHistory, Customer, EvaluationChange

VIEW = "segmenta_routing_writes"

_customers = Customer.__table__
_changes = EvaluationChange.__table__
_history = AssignmentHistory.__table__


def _copied(table: Table) -> list[str]:
    """The columns of a change or history row that the view carries (all but its id and customer)."""
    return [column.name for column in table.c if not column.primary_key and column.name != "customer_id"]


_CHANGE_COLUMNS = _copied(_changes)
_HISTORY_COLUMNS = _copied(_history)

ROUTING_WRITES_TABLE = Table(
    VIEW,
    MetaData(),
    Column("customer_id", Integer),
    # The customer's row: routing_version raised when `update_customer`; team, manager,
    # deciding rule and updated_at set to the new_* values when also `moved`.
    Column("update_customer", Boolean),
    Column("moved", Boolean),
    Column("new_team", Integer),
    Column("new_manager", Integer),
    Column("new_rule", String),
    Column("new_updated_at", DateTime),
    Column("segments_left", JSON),  # [segment id]
    Column("segments_joined", JSON),  # [segment id]
    Column("added_at", DateTime),
    Column("tags_removed", JSON),  # [rule tag]
    Column("tags_added", JSON),  # [[tag, source]]
    Column("attributes", JSON),  # [[key, text value, number value]]
    Column("write_change", Boolean),
    *[Column(f"ch_{column.name}", column.type) for column in _changes.c if column.name in _CHANGE_COLUMNS],
    Column("write_history", Boolean),
    *[Column(f"h_{column.name}", column.type) for column in _history.c if column.name in _HISTORY_COLUMNS],
    Column("positions", JSON),  # [[team id, round-robin position]]
)
ROUTING_WRITES = insert(ROUTING_WRITES_TABLE)
# One customer whose Customer object the session holds: the same INSERT, returning the
# customer's row as the trigger left it (RETURNING is computed after the row's trigger ran),
# for the ORM to refresh that object from (populate_existing) without another statement.
ROUTING_WRITES_RETURNING_CUSTOMER = select(Customer).from_statement(
    ROUTING_WRITES.returning(
        *[
            select(column).where(_customers.c.id == literal_column(f"{VIEW}.customer_id")).scalar_subquery().label(column.name)
            for column in _customers.c
        ]
    )
)

# Defaults of a row: nothing to write.
EMPTY_ROW: dict[str, Any] = {
    **{column.name: None for column in ROUTING_WRITES_TABLE.c},
    "update_customer": False,
    "moved": False,
    "segments_left": [],
    "segments_joined": [],
    "tags_removed": [],
    "tags_added": [],
    "attributes": [],
    "write_change": False,
    "write_history": False,
    "positions": [],
}


def _ddl() -> list[str]:
    names = ", ".join(f"NULL AS {column.name}" for column in ROUTING_WRITES_TABLE.c)
    change_columns = ", ".join(_CHANGE_COLUMNS)
    change_values = ", ".join(f"NEW.ch_{name}" for name in _CHANGE_COLUMNS)
    history_columns = ", ".join(_HISTORY_COLUMNS)
    history_values = ", ".join(f"NEW.h_{name}" for name in _HISTORY_COLUMNS)

    def moved(column: str, value: str) -> str:
        return f"{column} = CASE WHEN NEW.moved THEN NEW.{value} ELSE {column} END"

    # `WHERE true` before ON CONFLICT: SQLite's parser needs it after an INSERT … SELECT.
    body = f"""
        UPDATE customers SET {moved("team_id", "new_team")}, {moved("manager_id", "new_manager")},
            {moved("deciding_rule", "new_rule")}, {moved("updated_at", "new_updated_at")},
            routing_version = routing_version + 1
        WHERE id = NEW.customer_id AND NEW.update_customer;
        DELETE FROM segment_members
        WHERE customer_id = NEW.customer_id AND segment_id IN (SELECT value FROM json_each(NEW.segments_left));
        INSERT INTO segment_members (segment_id, customer_id, added_at)
        SELECT value, NEW.customer_id, NEW.added_at FROM json_each(NEW.segments_joined) WHERE true
        ON CONFLICT DO NOTHING;
        DELETE FROM customer_tags
        WHERE customer_id = NEW.customer_id AND source = 'rule'
            AND tag IN (SELECT value FROM json_each(NEW.tags_removed));
        INSERT INTO customer_tags (customer_id, tag, source)
        SELECT NEW.customer_id, json_extract(value, '$[0]'), json_extract(value, '$[1]')
        FROM json_each(NEW.tags_added) WHERE true
        ON CONFLICT DO NOTHING;
        INSERT INTO customer_attributes (customer_id, "key", text_value, number_value)
        SELECT NEW.customer_id, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]')
        FROM json_each(NEW.attributes);
        INSERT INTO evaluation_changes (customer_id, {change_columns})
        SELECT NEW.customer_id, {change_values} WHERE NEW.write_change;
        INSERT INTO assignment_history (customer_id, {history_columns})
        SELECT NEW.customer_id, {history_values} WHERE NEW.write_history;
        UPDATE teams SET round_robin_position = (
            SELECT json_extract(value, '$[1]') FROM json_each(NEW.positions) WHERE json_extract(value, '$[0]') = teams.id
        )
        WHERE id IN (SELECT json_extract(value, '$[0]') FROM json_each(NEW.positions));
    """
    return [
        f"CREATE TEMP VIEW IF NOT EXISTS {VIEW} AS SELECT {names}",
        f"CREATE TEMP TRIGGER IF NOT EXISTS {VIEW}_write INSTEAD OF INSERT ON {VIEW} BEGIN {body} END",
    ]


_DDL = _ddl()


def install(cursor: Any) -> None:
    """Create the view and its trigger on a new SQLite connection (given a DB-API cursor of it).

    The trigger's statements name tables SQLite resolves when it runs, so a connection
    opened before the migrations created them is fine.
    """
    for statement in _DDL:
        cursor.execute(statement)
