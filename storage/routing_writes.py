"""The writes of re-routing existing customers in real time (domain/routing/realtime.py decides them).

One write path, on SQLAlchemy Core statements executed through the session (so in its
transaction and savepoint, seen by its execution events, with its error handling):
:func:`write_routing` takes a :class:`RoutingWrites` — the customers' new assignments and
routing versions, the segment memberships and rule tags that come and go, the change and
history rows and the round-robin positions — and writes it

* one customer on PostgreSQL: as ONE statement, the same writes as data-modifying CTEs fed
  by arrays (a row that may be missing comes with a boolean), so routing a customer costs
  one round trip;
* on SQLite, which has no data-modifying CTEs: as ONE ``INSERT`` of a row per customer into
  the temporary routing view whose trigger runs the same writes (storage/sqlite_writes.py
  says why and how);
* several customers on PostgreSQL: one statement per table, each executed once for all
  its rows, tables without rows skipped.

The Customer objects the session holds for the customers are refreshed from their rows as
written (``populate_existing``: the statement's RETURNING for one customer, a read after a batch),
so the object a mutation returns shows the new assignment.

Every customer re-evaluated gets its routing_version raised, changed or not: an apply
running meanwhile then knows its snapshot of the customer is stale and leaves it to this
decision (domain/routing/runs.py).  Rows a concurrent apply already wrote or removed are no
error: inserts skip a row already there, deletes of a row already gone delete nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Integer,
    String,
    any_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from segmenta.storage import sqlite_writes
from segmenta.storage.dml import insert_ignoring_duplicates
from segmenta.storage.models import AssignmentHistory, Customer, CustomerTag, EvaluationChange, SegmentMember, Team

_customers = Customer.__table__
_members = SegmentMember.__table__
_tags = CustomerTag.__table__
_changes = EvaluationChange.__table__
_history = AssignmentHistory.__table__
_teams = Team.__table__

RULE_SOURCE = "rule"
# ORM execution option: rows a statement returns refresh the objects the session holds for them.
_POPULATE = {"populate_existing": True}


@dataclass(frozen=True)
class CustomerAssignment:
    """One re-evaluated customer: its routing version is raised; when `moved`, its assignment is set."""

    customer_id: int
    moved: bool
    team_id: int | None = None
    manager_id: int | None = None
    rule: str | None = None


@dataclass
class RoutingWrites:
    """Everything one real-time re-evaluation writes (rows name their customers)."""

    now: datetime
    customers: list[CustomerAssignment] = field(default_factory=list)
    segments_left: list[tuple[int, int]] = field(default_factory=list)
    """(customer id, segment id)."""
    segments_joined: list[tuple[int, int]] = field(default_factory=list)
    tags_removed: list[tuple[int, str]] = field(default_factory=list)
    """(customer id, rule tag)."""
    tags_added: list[tuple[int, str]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    """evaluation_changes rows."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """assignment_history rows."""
    positions: list[tuple[int, int]] = field(default_factory=list)
    """(team id, round-robin position to store)."""


def _moved(name: str, column: Any, moved: Any) -> Any:
    """The column's new value when the customer moved, else its value as stored."""
    return case((moved, bindparam(name, type_=column.type)), else_=column)


def _customer_update(customer: Any, moved: Any) -> Any:
    # updated_at named as itself when not moved: the column's onupdate would stamp it, and
    # routing is no edit of the customer.
    return (
        update(_customers)
        .where(_customers.c.id == customer)
        .values(
            team_id=_moved("new_team", _customers.c.team_id, moved),
            manager_id=_moved("new_manager", _customers.c.manager_id, moved),
            deciding_rule=_moved("new_rule", _customers.c.deciding_rule, moved),
            updated_at=_moved("new_updated_at", _customers.c.updated_at, moved),
            routing_version=_customers.c.routing_version + literal_column("1"),
        )
    )


# -- statement by statement ------------------------------------------------------------


_UPDATE_CUSTOMER = _customer_update(bindparam("target_id", type_=Integer()), bindparam("moved", type_=Boolean()))
_DELETE_MEMBERSHIP = delete(_members).where(
    _members.c.customer_id == bindparam("member_customer"), _members.c.segment_id == bindparam("member_segment")
)
_DELETE_TAG = delete(_tags).where(
    _tags.c.customer_id == bindparam("tag_customer"),
    _tags.c.tag == bindparam("tag_name"),
    _tags.c.source == bindparam("tag_source"),
)
_INSERT_CHANGES = insert(_changes)
_INSERT_HISTORY = insert(_history)
_UPDATE_POSITION = (
    update(_teams).where(_teams.c.id == bindparam("target_team")).values(round_robin_position=bindparam("new_position"))
)


_UPDATE_RETURNING_CUSTOMER = select(Customer).from_statement(_UPDATE_CUSTOMER.returning(*_customers.c))


def _customer_parameters(customer: CustomerAssignment, now: datetime) -> dict[str, Any]:
    return {
        "target_id": customer.customer_id,
        "moved": customer.moved,
        "new_team": customer.team_id,
        "new_manager": customer.manager_id,
        "new_rule": customer.rule,
        "new_updated_at": now,
    }


async def _write_table_by_table(session: AsyncSession, writes: RoutingWrites, *, customers: bool) -> None:
    """One statement per table (`customers`: the customers' rows too)."""
    dialect = session.get_bind().dialect.name
    batch: list[tuple[Any, list[dict[str, Any]]]] = [
        (_UPDATE_CUSTOMER, [_customer_parameters(c, writes.now) for c in writes.customers] if customers else []),
        (
            _DELETE_MEMBERSHIP,
            [{"member_customer": customer, "member_segment": segment} for customer, segment in writes.segments_left],
        ),
        (
            insert_ignoring_duplicates(dialect, _members),
            [
                {"segment_id": segment, "customer_id": customer, "added_at": writes.now}
                for customer, segment in writes.segments_joined
            ],
        ),
        (
            _DELETE_TAG,
            [
                {"tag_customer": customer, "tag_name": tag, "tag_source": RULE_SOURCE}
                for customer, tag in writes.tags_removed
            ],
        ),
        (
            insert_ignoring_duplicates(dialect, _tags),
            [{"customer_id": customer, "tag": tag, "source": RULE_SOURCE} for customer, tag in writes.tags_added],
        ),
        (_INSERT_CHANGES, writes.changes),
        (_INSERT_HISTORY, writes.history),
        (_UPDATE_POSITION, [{"target_team": team, "new_position": position} for team, position in writes.positions]),
    ]
    for statement, rows in batch:
        if rows:
            await session.execute(statement, rows)


# -- SQLite: one row per customer into the routing view ---------------------------------------


def _view_rows(writes: RoutingWrites, *, customers: bool) -> list[dict[str, Any]]:
    """The rows of storage/sqlite_writes.py's view: one per customer (`customers`: its row is updated too)."""
    rows: dict[int, dict[str, Any]] = {}
    for c in writes.customers:
        row = dict(sqlite_writes.EMPTY_ROW)
        row.update(
            customer_id=c.customer_id,
            update_customer=customers,
            moved=c.moved,
            new_team=c.team_id,
            new_manager=c.manager_id,
            new_rule=c.rule,
            new_updated_at=writes.now,
            added_at=writes.now,
            segments_left=[],
            segments_joined=[],
            tags_removed=[],
            tags_added=[],
        )
        rows[c.customer_id] = row
    for customer, segment in writes.segments_left:
        rows[customer]["segments_left"].append(segment)
    for customer, segment in writes.segments_joined:
        rows[customer]["segments_joined"].append(segment)
    for customer, tag in writes.tags_removed:
        rows[customer]["tags_removed"].append(tag)
    for customer, tag in writes.tags_added:
        rows[customer]["tags_added"].append([tag, RULE_SOURCE])
    for prefix, flag, written in (("ch_", "write_change", writes.changes), ("h_", "write_history", writes.history)):
        for values in written:
            row = rows[values["customer_id"]]
            row[flag] = True
            row.update({f"{prefix}{name}": value for name, value in values.items() if name != "customer_id"})
    # Positions are per team: they ride on the last row.
    last = rows[writes.customers[-1].customer_id]
    last["positions"] = [[team, position] for team, position in writes.positions]
    return list(rows.values())


# -- one customer in one statement (PostgreSQL) ----------------------------------------------


def _array_of(name: str, type_: Any) -> Any:
    return func.unnest(bindparam(name, type_=ARRAY(type_))).table_valued(name).render_derived()


def _row_of(table: Any, prefix: str) -> dict[str, Any]:
    return {
        column.name: bindparam(f"{prefix}{column.name}", type_=column.type) for column in table.c if not column.primary_key
    }


@functools.cache
def _one_customer_statement() -> Any:
    """The writes of one customer as one statement that returns the customer's row as written."""
    customer = bindparam("w_customer", type_=Integer())
    joined = _array_of("w_joined", Integer())
    added = _array_of("w_added", String())
    change = _row_of(_changes, "ch_")
    history = _row_of(_history, "h_")
    moved_customer = _customer_update(customer, bindparam("moved", type_=Boolean())).returning(*_customers.c).cte(
        "moved_customer"
    )
    ctes = [
        delete(_members)
        .where(_members.c.customer_id == customer, _members.c.segment_id == any_(bindparam("w_left", type_=ARRAY(Integer()))))
        .cte("left_segments"),
        insert_ignoring_duplicates("postgresql", _members)
        .from_select(
            ["segment_id", "customer_id", "added_at"],
            select(joined.c.w_joined, customer, bindparam("w_added_at", type_=DateTime())).select_from(joined),
        )
        .cte("joined_segments"),
        delete(_tags)
        .where(
            _tags.c.customer_id == customer,
            _tags.c.tag == any_(bindparam("w_removed", type_=ARRAY(String()))),
            _tags.c.source == bindparam("w_source", type_=String()),
        )
        .cte("removed_tags"),
        insert_ignoring_duplicates("postgresql", _tags)
        .from_select(
            ["customer_id", "tag", "source"],
            select(customer, added.c.w_added, bindparam("w_source", type_=String())).select_from(added),
        )
        .cte("added_tags"),
        insert(_changes)
        .from_select(list(change), select(*change.values()).where(bindparam("w_change", type_=Boolean())))
        .cte("change_row"),
        insert(_history)
        .from_select(list(history), select(*history.values()).where(bindparam("w_history", type_=Boolean())))
        .cte("history_row"),
        update(_teams)
        .where(_teams.c.id == bindparam("w_position_team", type_=Integer()))
        .values(round_robin_position=bindparam("w_position", type_=Integer()))
        .cte("stored_position"),
    ]
    return select(moved_customer).add_cte(*ctes)


def _one_customer_parameters(writes: RoutingWrites) -> dict[str, Any]:
    (customer,) = writes.customers
    position = writes.positions[0] if writes.positions else None
    parameters: dict[str, Any] = {
        "w_customer": customer.customer_id,
        "moved": customer.moved,
        "new_team": customer.team_id,
        "new_manager": customer.manager_id,
        "new_rule": customer.rule,
        "new_updated_at": writes.now,
        "w_left": [segment for _, segment in writes.segments_left],
        "w_joined": [segment for _, segment in writes.segments_joined],
        "w_added_at": writes.now,
        "w_removed": [tag for _, tag in writes.tags_removed],
        "w_added": [tag for _, tag in writes.tags_added],
        "w_source": RULE_SOURCE,
        "w_change": bool(writes.changes),
        "w_history": bool(writes.history),
        "w_position_team": position[0] if position else None,
        "w_position": position[1] if position else None,
    }
    for prefix, table, rows in (("ch_", _changes, writes.changes), ("h_", _history, writes.history)):
        for column in table.c:
            if not column.primary_key:
                parameters[f"{prefix}{column.name}"] = rows[0][column.name] if rows else None
    return parameters


# -- the write path ---------------------------------------------------------------------------


def _loaded_ids(session: AsyncSession, writes: RoutingWrites) -> list[int]:
    """The written customers the session holds as Customer objects."""
    identity_map = session.sync_session.identity_map
    return [c.customer_id for c in writes.customers if identity_key(Customer, c.customer_id) in identity_map]


def _in_one_statement(session: AsyncSession, writes: RoutingWrites) -> bool:
    """PostgreSQL, one customer: the data-modifying CTEs."""
    return len(writes.customers) == 1 and session.get_bind().dialect.name == "postgresql"


def _through_view(session: AsyncSession) -> bool:
    """SQLite: rows into the routing view (storage/sqlite_writes.py)."""
    return session.get_bind().dialect.name == "sqlite"


async def write_routing(session: AsyncSession, writes: RoutingWrites) -> None:
    """Write `writes` in the session's transaction (see the module docstring)."""
    if not writes.customers:
        return
    loaded = _loaded_ids(session, writes)
    if _in_one_statement(session, writes):
        statement = _one_customer_statement()
        parameters = _one_customer_parameters(writes)
        if loaded:
            # The row the statement returns refreshes the session's object (pending changes were
            # flushed before it ran: an ORM statement autoflushes).
            await session.execute(select(Customer).from_statement(statement), parameters, execution_options=_POPULATE)
        else:
            await session.execute(statement, parameters)
        return
    one_loaded = len(writes.customers) == 1 and bool(loaded)
    if _through_view(session):
        if one_loaded:
            # The view's RETURNING reads the customer's row as the trigger left it.
            (row,) = _view_rows(writes, customers=True)
            await session.execute(sqlite_writes.ROUTING_WRITES_RETURNING_CUSTOMER, row, execution_options=_POPULATE)
            return
        await session.execute(sqlite_writes.ROUTING_WRITES, _view_rows(writes, customers=True))
    else:
        # One loaded customer: its UPDATE … RETURNING refreshes it.
        if one_loaded:
            parameters = _customer_parameters(writes.customers[0], writes.now)
            await session.execute(_UPDATE_RETURNING_CUSTOMER, parameters, execution_options=_POPULATE)
        await _write_table_by_table(session, writes, customers=not one_loaded)
        if one_loaded:
            return
    if loaded:
        # Several customers: the ones the session holds are read back.
        await session.execute(select(Customer).where(Customer.id.in_(loaded)), execution_options=_POPULATE)
