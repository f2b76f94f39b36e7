"""The statements of creating one routed customer (domain/realtime_create.py decides what they carry).

* :func:`read_new_customer` — one UNION ALL: whether the code is taken, the active
  ruleset and the day's realtime run ("head"), the chosen team with its active
  members (locked on PostgreSQL; their loads on SQLite) and the segments joined;
* :func:`insert_new_customer` — the customer, its tags, attributes, segment
  memberships, change row, history row and round-robin position: on PostgreSQL one
  statement (data-modifying CTEs fed by arrays); on SQLite the customer's INSERT …
  RETURNING, then one statement per table sent straight to the driver
  (storage/sqlite_direct.py).

Every statement is built once per process and executed with bound parameters: an
executed statement object keeps its cache key, so a call costs neither compilation
nor the walk over the statement that computes the key.  (Building the statements
per call cost more than running them.)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    bindparam,
    exists,
    func,
    insert,
    literal,
    null,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from storage import sqlite_direct
from storage.models import (
    AssignmentHistory,
    Customer,
    CustomerAttribute,
    CustomerTag,
    Employee,
    EvaluationChange,
    EvaluationRun,
    Ruleset,
    Segment,
    SegmentMember,
    Team,
    TeamMember,
)

_customers = Customer.__table__
_tags = CustomerTag.__table__
_attributes = CustomerAttribute.__table__
_memberships = SegmentMember.__table__
_changes = EvaluationChange.__table__
_history = AssignmentHistory.__table__
_teams = Team.__table__

# ---------------------------------------------------------------------------
# The read: one UNION ALL whose arms share one column layout.
# ---------------------------------------------------------------------------

# Every arm has these columns (NULL where it has nothing to say), so that one
# statement returns rows of different kinds; `what` tells them apart.
_LAYOUT: dict[str, Any] = {
    "what": String(),
    "code_taken": Boolean(),
    "ruleset_id": Integer(),
    "ruleset_version": Integer(),
    "ruleset_source": Text(),
    "day_run_id": Integer(),
    "team_id": Integer(),
    "strategy": String(),
    "position": Integer(),
    "employee_id": Integer(),
    "capacity": Integer(),
    "specialties": JSON(),
    "regions": JSON(),
    "load": Integer(),
    "segment_key": String(),
    "segment_id": Integer(),
    "segment_kind": String(),
}


def _arm(what: str, **columns: Any) -> Select[Any]:
    unknown = set(columns) - set(_LAYOUT)
    assert not unknown, unknown
    return select(
        literal(what, String()).label("what"),
        *[
            (columns[name] if name in columns else null().cast(type_)).label(name)
            for name, type_ in _LAYOUT.items()
            if name != "what"
        ],
    )


def _active_ruleset() -> Any:
    return (
        select(Ruleset.id, Ruleset.version, Ruleset.source)
        .where(Ruleset.status == "active")
        .order_by(Ruleset.id)
        .limit(1)
        .subquery("active_ruleset")
    )


def _head_arms(realtime_mode: str) -> list[Select[Any]]:
    """Whether `code` is taken (always one row); the active ruleset and its realtime run of `day` (a row or none)."""
    active = _active_ruleset()
    day_run = (
        select(EvaluationRun.id)
        .where(
            EvaluationRun.mode == realtime_mode,
            EvaluationRun.ruleset_id == active.c.id,
            EvaluationRun.as_of == bindparam("day", type_=DateTime()),
        )
        .order_by(EvaluationRun.id)
        .limit(1)
        .scalar_subquery()
    )
    return [
        _arm("code", code_taken=exists().where(_customers.c.code == bindparam("code", type_=String()))),
        _arm(
            "ruleset",
            ruleset_id=active.c.id,
            ruleset_version=active.c.version,
            ruleset_source=active.c.source,
            day_run_id=day_run,
        ).select_from(active),
    ]


def _team_arms(automatic: Sequence[str], *, with_loads: bool, guarded: bool) -> list[Select[Any]]:
    """The team `team_key` and, when its strategy is in `automatic`, its active members, locked.

    `guarded`: only when the active ruleset is `guess_id`, `guess_version`,
    `guess_source` (what the caller decided with before reading), so that a guess
    that turns out wrong locks nothing.
    """
    team_query = select(Team.id, Team.strategy, Team.round_robin_position).where(
        Team.key == bindparam("team_key", type_=String())
    )
    if guarded:
        active = _active_ruleset()
        team_query = team_query.where(
            exists()
            .select_from(active)
            .where(
                active.c.id == bindparam("guess_id", type_=Integer()),
                active.c.version == bindparam("guess_version", type_=Integer()),
                active.c.source == bindparam("guess_source", type_=Text()),
            )
        )
    team = team_query.cte("routed_team")
    # Only a team that assigns managers is locked and has its members read (as
    # domain/realtime.py does).  The team row first, then its members' employee rows
    # in id order: the order every assignment locks in (domain/assignment.py), so
    # routers never deadlock.  A locked row is read in its latest committed version.
    # (FOR UPDATE compiles to nothing on SQLite, where a writer holds the database.)
    locked = (
        select(Team.id, Team.round_robin_position)
        .where(Team.id == select(team.c.id).scalar_subquery(), Team.strategy.in_(list(automatic)))
        .with_for_update()
        .cte("locked_team")
    )
    members = (
        select(Employee.id, Employee.capacity, Employee.specialties, Employee.regions)
        .join(TeamMember, TeamMember.employee_id == Employee.id)
        .where(TeamMember.team_id == select(locked.c.id).scalar_subquery(), Employee.active.is_(True))
        .order_by(Employee.id)
        .with_for_update(of=Employee)
        .cte("routed_members")
    )
    load = (
        select(func.count()).select_from(_customers).where(_customers.c.manager_id == members.c.id).scalar_subquery()
        if with_loads
        else null().cast(Integer())
    )
    return [
        _arm(
            "team",
            team_id=team.c.id,
            strategy=team.c.strategy,
            position=func.coalesce(locked.c.round_robin_position, team.c.round_robin_position),
        ).select_from(team.outerjoin(locked, true())),
        _arm(
            "member",
            employee_id=members.c.id,
            capacity=members.c.capacity,
            specialties=members.c.specialties,
            regions=members.c.regions,
            load=load,
        ).select_from(members),
    ]


@functools.cache
def _read_statement(
    realtime_mode: str,
    automatic: tuple[str, ...],
    *,
    head: bool,
    team: bool,
    segments: bool,
    with_loads: bool,
    guarded: bool,
) -> Any:
    arms = _head_arms(realtime_mode) if head else []
    if team:
        arms += _team_arms(automatic, with_loads=with_loads, guarded=guarded)
    if segments:
        arms.append(
            _arm("segment", segment_key=Segment.key, segment_id=Segment.id, segment_kind=Segment.kind).where(
                Segment.key.in_(bindparam("segment_keys", expanding=True))
            )
        )
    assert arms, "nothing to read"
    return arms[0] if len(arms) == 1 else union_all(*arms)


MemberRow = tuple[int, int, int | None, Any, Any]
"""(team id, employee id, capacity, specialties, regions), as domain.assignment.build_assigners takes them."""


@dataclass
class NewCustomerRead:
    code_taken: bool = False
    ruleset: tuple[int, int, str] | None = None
    """(id, version, source) of the active ruleset."""
    day_run_id: int | None = None
    team: tuple[int, str, int | None] | None = None
    """(id, strategy, round-robin position) of the team `team_key` names, when it exists."""
    members: list[MemberRow] = field(default_factory=list)
    """Its active members in employee-id order (only for a team whose strategy assigns managers)."""
    loads: dict[int, int] = field(default_factory=dict)
    """Customers per member, when read with the members (SQLite)."""
    segments: list[tuple[str, int, str]] = field(default_factory=list)
    """(key, id, kind) of the stored segments among `segment_keys`."""


@dataclass(frozen=True)
class Guess:
    """The ruleset the caller decided with before reading: team locks are only taken if it is the active one."""

    ruleset_id: int
    version: int
    source: str


async def read_new_customer(
    session: AsyncSession,
    *,
    head: tuple[str, datetime] | None,
    team_key: str | None,
    segment_keys: Sequence[str],
    guess: Guess | None,
    with_loads: bool,
    realtime_mode: str,
    automatic_strategies: Sequence[str],
) -> NewCustomerRead:
    """One statement: the head when `head` = (code, day start) is given, then the team and segments asked for."""
    statement = _read_statement(
        realtime_mode,
        tuple(automatic_strategies),
        head=head is not None,
        team=team_key is not None,
        segments=bool(segment_keys),
        with_loads=with_loads,
        guarded=guess is not None,
    )
    parameters: dict[str, Any] = {}
    if head is not None:
        parameters.update(code=head[0], day=head[1])
    if team_key is not None:
        parameters["team_key"] = team_key
        if guess is not None:
            parameters.update(guess_id=guess.ruleset_id, guess_version=guess.version, guess_source=guess.source)
    if segment_keys:
        parameters["segment_keys"] = sorted(set(segment_keys))
    read = NewCustomerRead()
    members: list[MemberRow] = []
    for row in (await session.execute(statement, parameters)).mappings():
        what = row["what"]
        if what == "code":
            read.code_taken = bool(row["code_taken"])
        elif what == "ruleset":
            read.ruleset = (row["ruleset_id"], row["ruleset_version"], row["ruleset_source"])
            read.day_run_id = row["day_run_id"]
        elif what == "team":
            read.team = (row["team_id"], row["strategy"], row["position"])
        elif what == "member":
            members.append((0, row["employee_id"], row["capacity"], row["specialties"], row["regions"]))
            if row["load"]:
                read.loads[row["employee_id"]] = row["load"]
        else:
            read.segments.append((row["segment_key"], row["segment_id"], row["segment_kind"]))
    if read.team is not None:
        team_id = read.team[0]
        read.members = sorted(((team_id, *member[1:]) for member in members), key=lambda member: member[1])
    return read


# ---------------------------------------------------------------------------
# The writes.
# ---------------------------------------------------------------------------


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
    """(team id, round-robin position to store)."""


# ORM-enabled INSERT … RETURNING: the session gets the persistent Customer without a flush.
_INSERT_CUSTOMER = insert(Customer).returning(Customer)
# An id freed by a rolled-back insert (SQLite reuses ids) may still name a stale,
# expired object in the session: it becomes the new customer.
_POPULATE = {"populate_existing": True}
_INSERT_TAGS = insert(_tags)
_INSERT_ATTRIBUTES = insert(_attributes)
_INSERT_MEMBERSHIPS = insert(_memberships)
_INSERT_CHANGE = insert(_changes)
_INSERT_HISTORY = insert(_history)
_UPDATE_POSITION = (
    update(_teams).where(_teams.c.id == bindparam("target_team")).values(round_robin_position=bindparam("new_position"))
)


async def insert_new_customer(session: AsyncSession, writes: NewCustomerWrites) -> Customer:
    """Write it all in the session's transaction; the new customer, persistent in the session.

    No ORM execution event sees the history row (it is not written through
    ``session.execute``): the caller announces it (domain/events.py).
    """
    if session.get_bind().dialect.name == "postgresql":
        return await _insert_in_one_statement(session, writes)
    return await _insert_table_by_table(session, writes)


async def _insert_table_by_table(session: AsyncSession, writes: NewCustomerWrites) -> Customer:
    customer = (await session.scalars(_INSERT_CUSTOMER, [writes.row], execution_options=_POPULATE)).one()
    customer_id = customer.id
    # The rest straight to the driver: one trip each instead of four (storage/sqlite_direct.py).
    await sqlite_direct.write(
        session,
        _INSERT_TAGS,
        [{"customer_id": customer_id, "tag": tag, "source": source} for tag, source in writes.tags],
    )
    await sqlite_direct.write(
        session,
        _INSERT_ATTRIBUTES,
        [
            {"customer_id": customer_id, "key": key, "text_value": text, "number_value": number}
            for key, text, number in writes.attributes
        ],
    )
    await sqlite_direct.write(
        session,
        _INSERT_MEMBERSHIPS,
        [
            {"segment_id": segment_id, "customer_id": customer_id, "added_at": writes.added_at}
            for segment_id in writes.segment_ids
        ],
    )
    if writes.change is not None:
        await sqlite_direct.write(session, _INSERT_CHANGE, [{**writes.change, "customer_id": customer_id}])
    if writes.history is not None:
        await sqlite_direct.write(session, _INSERT_HISTORY, [{**writes.history, "customer_id": customer_id}])
    if writes.position is not None:
        team_id, position = writes.position
        await sqlite_direct.write(session, _UPDATE_POSITION, [{"target_team": team_id, "new_position": position}])
    return customer


# PostgreSQL: one statement.  The customer's INSERT is a CTE whose RETURNING feeds
# the other INSERTs (they all see the same snapshot, and the foreign keys to the new
# row are checked at the end of the statement).  Lists come as arrays and optional
# rows as a boolean, so the statement has one shape whatever it carries.


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


@functools.cache
def _one_statement() -> Any:
    new = insert(_customers).values(_column_parameters(_customers, "c_")).returning(*_customers.c).cte("new_customer")
    tags = _unnest(("tag_names", String()), ("tag_sources", String()))
    attributes = _unnest(("attribute_keys", String()), ("attribute_texts", Text()), ("attribute_numbers", Float()))
    segments = _unnest(("segment_ids", Integer()))
    change_values = _column_parameters(_changes, "ch_", skip=("customer_id",))
    history_values = _column_parameters(_history, "h_", skip=("customer_id",))
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
        update(_teams)
        .where(_teams.c.id == bindparam("position_team", type_=Integer()))
        .values(round_robin_position=bindparam("position_value", type_=Integer()))
        .cte("new_position"),
    ]
    return select(Customer).from_statement(select(new).add_cte(*ctes))


def _one_statement_parameters(writes: NewCustomerWrites) -> dict[str, Any]:
    parameters: dict[str, Any] = {f"c_{name}": value for name, value in writes.row.items()}
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
        position_team=writes.position[0] if writes.position else None,
        position_value=writes.position[1] if writes.position else None,
    )
    for prefix, values, table in (("ch_", writes.change, _changes), ("h_", writes.history, _history)):
        for column in table.c:
            if not column.primary_key and column.name != "customer_id":
                parameters[f"{prefix}{column.name}"] = (values or {}).get(column.name)
    return parameters


async def _insert_in_one_statement(session: AsyncSession, writes: NewCustomerWrites) -> Customer:
    result = await session.scalars(_one_statement(), _one_statement_parameters(writes), execution_options=_POPULATE)
    return result.one()


def history_values(writes: NewCustomerWrites, customer_id: int) -> Mapping[str, Any] | None:
    """The history row as written (for announcing it), or None."""
    return None if writes.history is None else {**writes.history, "customer_id": customer_id}
