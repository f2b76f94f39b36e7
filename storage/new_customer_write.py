"""The writes of creating one routed customer (domain/routing/realtime_create.py decides what they carry).

:func:`insert_new_customer` writes the customer, its tags, attributes, segment
memberships, change row, history row and round-robin position, all through the
session: on PostgreSQL one statement (data-modifying CTEs fed by arrays) that also
picks the manager (:class:`ManagerPick`); on SQLite (no data-modifying CTEs) the
customer's INSERT … RETURNING, then one row of storage/sqlite_writes.py's routing view,
whose trigger writes the rest in the same statement.

Statements are built once per process (see storage/new_customer_read.py for why).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.storage import sqlite_writes
from segmenta.storage.models import (
    AssignmentHistory,
    Customer,
    CustomerAttribute,
    CustomerTag,
    EvaluationChange,
    SegmentMember,
    Team,
)
from segmenta.storage.new_customer_read import load_of

_customers = Customer.__table__
_tags = CustomerTag.__table__
_attributes = CustomerAttribute.__table__
_memberships = SegmentMember.__table__
_changes = EvaluationChange.__table__
_history = AssignmentHistory.__table__
_teams = Team.__table__


@dataclass
class NewCustomerWrites:
    """Everything to write for a new customer; rows name the customer by the id its INSERT returns."""

    row: dict[str, Any]
    """Every customers column but the id."""
    tags: list[tuple[str, str]] = field(default_factory=list)
    """(tag, source)."""
    attributes: list[tuple[str, str | None, float | None]] = field(default_factory=list)
    """(key, text value, number value)."""
    segment_ids: list[int] = field(default_factory=list)
    added_at: datetime | None = None
    change: dict[str, Any] | None = None
    """evaluation_changes values but customer_id."""
    history: dict[str, Any] | None = None
    """assignment_history values but customer_id."""
    position: tuple[int, int] | None = None
    """(team id, round-robin position to store) — SQLite; on PostgreSQL `pick` decides it."""
    pick: ManagerPick | None = None
    """PostgreSQL: the manager is chosen inside the write (then `row`'s manager_id and the
    change's and history's manager_after_id are whatever it chooses)."""


@dataclass(frozen=True)
class ManagerPick:
    """One customer joining a team that assigns managers: what the write needs to choose the manager.

    The choice is domain.routing.assignment.TeamAssigner.assign for one customer, in SQL: members
    with room (no capacity, or fewer customers than it), the preferred ones among them
    if any, then least_loaded takes the fewest customers (ties: lowest employee id) and
    round_robin the first at or after `position`, cyclically.  Done in the write because
    there the loads are counted after the read locked the members, without a statement in
    between.  tests/domain/test_realtime_create.py checks it against the Python assigner.
    """

    team_id: int
    strategy: str
    employee_ids: list[int]
    """The team's active members, in employee-id order (the round-robin order)."""
    capacities: list[int | None]
    preferred: list[bool]
    position: int
    """The round-robin position, normalised to 0 <= position < len(employee_ids)."""


# ORM-enabled INSERT … RETURNING: the session gets the persistent Customer without a flush.
_INSERT_CUSTOMER = insert(Customer).returning(Customer)
# An id freed by a rolled-back insert (SQLite reuses ids) may still name a stale,
# expired object in the session: it becomes the new customer.
_POPULATE = {"populate_existing": True}


async def insert_new_customer(
    session: AsyncSession, writes: NewCustomerWrites, *, every_load_strategies: Sequence[str]
) -> Customer:
    """Write it all in the session's transaction; the new customer, persistent in the session.

    The caller announces the history row (:func:`history_values`; domain/events.py).
    """
    if session.get_bind().dialect.name == "postgresql":
        return await _insert_in_one_statement(session, writes, tuple(every_load_strategies))
    return await _insert_then_one_row(session, writes)


async def _insert_then_one_row(session: AsyncSession, writes: NewCustomerWrites) -> Customer:
    """SQLite: the customer's INSERT … RETURNING, then everything else as one row of the routing view."""
    customer = (await session.scalars(_INSERT_CUSTOMER, [writes.row], execution_options=_POPULATE)).one()
    if not (writes.tags or writes.attributes or writes.segment_ids or writes.change or writes.history or writes.position):
        return customer
    row = dict(sqlite_writes.EMPTY_ROW)
    row.update(
        customer_id=customer.id,
        segments_joined=list(writes.segment_ids),
        added_at=writes.added_at,
        tags_added=[[tag, source] for tag, source in writes.tags],
        attributes=[[key, text, number] for key, text, number in writes.attributes],
        positions=[list(writes.position)] if writes.position is not None else [],
    )
    for prefix, flag, values in (("ch_", "write_change", writes.change), ("h_", "write_history", writes.history)):
        if values is not None:
            row[flag] = True
            row.update({f"{prefix}{name}": value for name, value in values.items()})
    await session.execute(sqlite_writes.ROUTING_WRITES, [row])
    return customer


# PostgreSQL: one statement.  The customer's INSERT is a CTE whose RETURNING feeds
# the other INSERTs (they all see the same snapshot, and the foreign keys to the new
# row are checked at the end of the statement); its manager is picked in the statement
# (ManagerPick).  Lists come as arrays and optional rows as a boolean, so the statement
# has one shape whatever it carries.


def _column_parameters(table: Any, prefix: str, skip: Sequence[str] = ()) -> dict[str, Any]:
    return {
        column.name: bindparam(f"{prefix}{column.name}", type_=column.type)
        for column in table.c
        if not column.primary_key and column.name not in skip
    }


def _unnest(*columns: tuple[str, Any]) -> Any:
    return (
        func.unnest(*[bindparam(name, type_=ARRAY(type_)) for name, type_ in columns])
        .table_valued(*[name for name, _ in columns])
        .render_derived()
    )


def _chosen_manager(every_load: Sequence[str]) -> Any:
    """The CTE with the chosen member's (id, ordinality) — no row when nobody is picked (see ManagerPick)."""
    members = (
        func.unnest(
            bindparam("pick_ids", type_=ARRAY(Integer())),
            bindparam("pick_capacities", type_=ARRAY(Integer())),
            bindparam("pick_preferred", type_=ARRAY(Boolean())),
        )
        .table_valued("id", "capacity", "preferred", with_ordinality="ord")
        .render_derived()
    )
    strategy = bindparam("pick_strategy", type_=String())
    # Counted here, in the write's snapshot: taken after the read locked these employees.
    # Only the loads that can matter (least_loaded compares all; round_robin only checks
    # a load against a capacity).
    load = case(
        (or_(strategy.in_(list(every_load)), members.c.capacity.is_not(None)), load_of(members.c.id)),
        else_=literal(0),
    )
    loaded = select(members.c.id, members.c.capacity, members.c.preferred, members.c.ord, load.label("load")).cte(
        "pick_loads"
    )
    room = select(loaded).where(or_(loaded.c.capacity.is_(None), loaded.c.load < loaded.c.capacity)).cte("pick_room")
    other = room.alias("pick_room_preferred")
    pool = select(room).where(or_(room.c.preferred, ~exists().where(other.c.preferred))).cte("pick_pool")
    count = bindparam("pick_count", type_=Integer())
    position = bindparam("pick_position", type_=Integer())
    # round_robin: the distance from the position, cyclically (members are 1-based in `ord`).
    distance = ((pool.c.ord - 1 - position) % count + count) % count
    return (
        select(pool.c.id, pool.c.ord)
        .order_by(
            case((strategy == "least_loaded", pool.c.load), else_=literal(0)),
            case((strategy == "round_robin", distance), else_=literal(0)),
            pool.c.id,
        )
        .limit(1)
        .cte("pick_chosen")
    )


@functools.cache
def _one_statement(every_load: tuple[str, ...]) -> Any:
    chosen = _chosen_manager(every_load)
    picked = select(chosen.c.id).scalar_subquery()
    customer_values = _column_parameters(_customers, "c_", skip=("manager_id",))
    new = (
        insert(_customers)
        .values({**customer_values, "manager_id": picked})
        .returning(*_customers.c)
        .cte("new_customer")
    )
    tags = _unnest(("tag_names", String()), ("tag_sources", String()))
    attributes = _unnest(("attribute_keys", String()), ("attribute_texts", Text()), ("attribute_numbers", Float()))
    segments = _unnest(("segment_ids", Integer()))
    # The manager after is the new customer's, whoever was picked.
    change_values = {
        **_column_parameters(_changes, "ch_", skip=("customer_id", "manager_after_id")),
        "manager_after_id": new.c.manager_id,
    }
    history_values = {
        **_column_parameters(_history, "h_", skip=("customer_id", "manager_after_id")),
        "manager_after_id": new.c.manager_id,
    }
    new_position = (select(chosen.c.ord).scalar_subquery() % bindparam("pick_count", type_=Integer()))
    ctes = [
        insert(_tags)
        .from_select(
            ["customer_id", "tag", "source"],
            select(new.c.id, tags.c.tag_names, tags.c.tag_sources).select_from(new.join(tags, true())),
        )
        .cte("new_tags"),
        insert(_attributes)
        .from_select(
            ["customer_id", "key", "text_value", "number_value"],
            select(
                new.c.id, attributes.c.attribute_keys, attributes.c.attribute_texts, attributes.c.attribute_numbers
            ).select_from(new.join(attributes, true())),
        )
        .cte("new_attributes"),
        insert(_memberships)
        .from_select(
            ["segment_id", "customer_id", "added_at"],
            select(segments.c.segment_ids, new.c.id, bindparam("added_at", type_=DateTime())).select_from(
                new.join(segments, true())
            ),
        )
        .cte("new_memberships"),
        insert(_changes)
        .from_select(
            ["customer_id", *change_values],
            select(new.c.id, *change_values.values()).where(bindparam("write_change", type_=Boolean())),
        )
        .cte("new_change"),
        insert(_history)
        .from_select(
            ["customer_id", *history_values],
            select(new.c.id, *history_values.values()).where(bindparam("write_history", type_=Boolean())),
        )
        .cte("new_history"),
        # Round robin moves on past the member picked (stored only when that changes it).
        update(_teams)
        .where(
            _teams.c.id == bindparam("pick_team", type_=Integer()),
            bindparam("pick_strategy", type_=String()) == "round_robin",
            exists(select(chosen.c.id)),
            _teams.c.round_robin_position.is_distinct_from(new_position),
        )
        .values(round_robin_position=new_position)
        .cte("new_position"),
    ]
    return select(Customer).from_statement(select(new).add_cte(*ctes))


def _one_statement_parameters(writes: NewCustomerWrites) -> dict[str, Any]:
    parameters: dict[str, Any] = {f"c_{name}": value for name, value in writes.row.items() if name != "manager_id"}
    parameters.update(
        tag_names=[tag for tag, _ in writes.tags],
        tag_sources=[source for _, source in writes.tags],
        attribute_keys=[key for key, _, _ in writes.attributes],
        attribute_texts=[text for _, text, _ in writes.attributes],
        attribute_numbers=[number for _, _, number in writes.attributes],
        segment_ids=list(writes.segment_ids),
        added_at=writes.added_at,
        write_change=writes.change is not None,
        write_history=writes.history is not None,
    )
    pick = writes.pick
    parameters.update(
        pick_team=pick.team_id if pick else None,
        pick_strategy=pick.strategy if pick else None,
        pick_ids=pick.employee_ids if pick else [],
        pick_capacities=pick.capacities if pick else [],
        pick_preferred=pick.preferred if pick else [],
        pick_count=max(len(pick.employee_ids), 1) if pick else 1,
        pick_position=pick.position if pick else 0,
    )
    for prefix, values, table in (("ch_", writes.change, _changes), ("h_", writes.history, _history)):
        for column in table.c:
            if not column.primary_key and column.name not in ("customer_id", "manager_after_id"):
                parameters[f"{prefix}{column.name}"] = (values or {}).get(column.name)
    return parameters


async def _insert_in_one_statement(
    session: AsyncSession, writes: NewCustomerWrites, every_load: tuple[str, ...]
) -> Customer:
    result = await session.scalars(
        _one_statement(every_load), _one_statement_parameters(writes), execution_options=_POPULATE
    )
    return result.one()


def history_values(writes: NewCustomerWrites, customer: Customer) -> Mapping[str, Any] | None:
    """The history row as written (for announcing it), or None."""
    if writes.history is None:
        return None
    return {**writes.history, "customer_id": customer.id, "manager_after_id": customer.manager_id}
