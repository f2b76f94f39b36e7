"""The statements of creating one routed customer (domain/routing/realtime_create.py decides what they carry).

* :func:`read_new_customer` — one UNION ALL: whether the code is taken, the active
  ruleset and the day's realtime run ("head"), the chosen team with its active
  members (locked on PostgreSQL; their loads on SQLite) and the segments joined.
  Re-routing one existing customer (domain/routing/realtime.py) reads its team and segments
  with it too, without the head, the members only when it needs a manager
  (:class:`ExistingCustomer`);
* :func:`insert_new_customer` — the customer, its tags, attributes, segment
  memberships, change row, history row and round-robin position: on PostgreSQL one
  statement (data-modifying CTEs fed by arrays) that also picks the manager
  (:class:`ManagerPick`); on SQLite (no data-modifying CTEs) the customer's INSERT …
  RETURNING, then one statement per table that has rows.  All through the session.

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
    case,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from segmenta.storage.models import (
    AssignmentHistory,
    Customer,
    CustomerAttribute,
    CustomerTag,
    Employee,
    EvaluationChange,
    EvaluationRun,
    RulesetVersion,
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
        select(RulesetVersion.id, RulesetVersion.version, RulesetVersion.source)
        .where(RulesetVersion.status == "active")
        .order_by(RulesetVersion.id)
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


def _team_arms(
    automatic: Sequence[str], every_load: Sequence[str], *, with_loads: bool, guarded: bool, existing: bool
) -> list[Select[Any]]:
    """The team `team_key` and, when its strategy is in `automatic`, its active members, locked.

    `existing`: for an existing customer (ExistingCustomer), only when it needs a manager.

    `with_loads`: with the members' loads — those that can matter: every member's
    under a strategy in `every_load`, otherwise only those of members with a capacity.

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
    # domain/routing/realtime.py does).  The team row first, then its members' employee rows
    # in id order: the order every assignment locks in (domain/routing/assignment.py), so
    # routers never deadlock.  A locked row is read in its latest committed version.
    # (FOR UPDATE compiles to nothing on SQLite, where a writer holds the database.)
    # NO KEY UPDATE: it still makes routers take turns, but lets other transactions insert
    # rows that refer to the team or the employee (a history row's foreign keys take KEY
    # SHARE) — with plain FOR UPDATE two routers each waited for the other's history insert.
    needs_manager = [Team.id == select(team.c.id).scalar_subquery(), Team.strategy.in_(list(automatic))]
    if existing:
        kept_in = bindparam("manager_kept_in", type_=Integer())
        needs_manager += [
            bindparam("may_need_manager", type_=Boolean()),
            or_(kept_in.is_(None), Team.id != kept_in),
        ]
    locked = (
        select(Team.id, Team.strategy, Team.round_robin_position)
        .where(*needs_manager)
        .with_for_update(key_share=True)
        .cte("locked_team")
    )
    members = (
        select(Employee.id, Employee.capacity, Employee.specialties, Employee.regions)
        .join(TeamMember, TeamMember.employee_id == Employee.id)
        .where(TeamMember.team_id == select(locked.c.id).scalar_subquery(), Employee.active.is_(True))
        .order_by(Employee.id)
        .with_for_update(of=Employee, key_share=True)
        .cte("routed_members")
    )
    load = (
        case(
            (
                or_(
                    select(locked.c.strategy).scalar_subquery().in_(list(every_load)),
                    members.c.capacity.is_not(None),
                ),
                _load_of(members.c.id),
            ),
            else_=null(),
        )
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


def _load_of(employee_id: Any) -> Any:
    # A scalar count per employee: an index-only scan each, cheaper than one GROUP BY
    # over an IN list (a bitmap scan and a sort) for the few members of a team.
    return select(func.count()).select_from(_customers).where(_customers.c.manager_id == employee_id).scalar_subquery()


@functools.cache
def _read_statement(
    realtime_mode: str,
    automatic: tuple[str, ...],
    every_load: tuple[str, ...],
    *,
    head: bool,
    team: bool,
    segments: bool,
    with_loads: bool,
    guarded: bool,
    existing: bool,
) -> Any:
    arms = _head_arms(realtime_mode) if head else []
    if team:
        arms += _team_arms(automatic, every_load, with_loads=with_loads, guarded=guarded, existing=existing)
    if segments:
        arms.append(
            _arm("segment", segment_key=Segment.key, segment_id=Segment.id, segment_kind=Segment.kind).where(
                Segment.key.in_(bindparam("segment_keys", expanding=True))
            )
        )
    assert arms, "nothing to read"
    return arms[0] if len(arms) == 1 else union_all(*arms)


MemberRow = tuple[int, int, int | None, Any, Any]
"""(team id, employee id, capacity, specialties, regions), as domain.routing.assignment.build_assigners takes them."""


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
    """Customers per member whose load can matter, when read with the members (SQLite)."""
    segments: list[tuple[str, int, str]] = field(default_factory=list)
    """(key, id, kind) of the stored segments among `segment_keys`."""


@dataclass(frozen=True)
class ExistingCustomer:
    """A customer being re-routed (domain/routing/realtime.py) rather than created: it needs a manager
    — and the team is locked and its members read — only when its assignment is not locked and
    it joins a team other than `manager_kept_in` (its team, when it has a manager there)."""

    assignment_locked: bool
    manager_kept_in: int | None


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
    every_load_strategies: Sequence[str],
    existing: ExistingCustomer | None = None,
) -> NewCustomerRead:
    """One statement: the head when `head` = (code, day start) is given, then the team and segments asked for."""
    statement = _read_statement(
        realtime_mode,
        tuple(automatic_strategies),
        tuple(every_load_strategies),
        head=head is not None,
        team=team_key is not None,
        segments=bool(segment_keys),
        with_loads=with_loads,
        guarded=guess is not None,
        existing=existing is not None,
    )
    parameters: dict[str, Any] = {}
    if head is not None:
        parameters.update(code=head[0], day=head[1])
    if team_key is not None:
        parameters["team_key"] = team_key
        if existing is not None:
            parameters.update(may_need_manager=not existing.assignment_locked, manager_kept_in=existing.manager_kept_in)
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
            if row["load"] is not None:
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
_INSERT_TAGS = insert(_tags)
_INSERT_ATTRIBUTES = insert(_attributes)
_INSERT_MEMBERSHIPS = insert(_memberships)
_INSERT_CHANGE = insert(_changes)
_INSERT_HISTORY = insert(_history)
_UPDATE_POSITION = (
    update(_teams).where(_teams.c.id == bindparam("target_team")).values(round_robin_position=bindparam("new_position"))
)


async def insert_new_customer(
    session: AsyncSession, writes: NewCustomerWrites, *, every_load_strategies: Sequence[str]
) -> Customer:
    """Write it all in the session's transaction; the new customer, persistent in the session.

    The caller announces the history row (:func:`history_values`; domain/events.py).
    """
    if session.get_bind().dialect.name == "postgresql":
        return await _insert_in_one_statement(session, writes, tuple(every_load_strategies))
    return await _insert_table_by_table(session, writes)


async def _insert_table_by_table(session: AsyncSession, writes: NewCustomerWrites) -> Customer:
    customer = (await session.scalars(_INSERT_CUSTOMER, [writes.row], execution_options=_POPULATE)).one()
    customer_id = customer.id
    batch: list[tuple[Any, list[dict[str, Any]]]] = [
        (_INSERT_TAGS, [{"customer_id": customer_id, "tag": tag, "source": source} for tag, source in writes.tags]),
        (
            _INSERT_ATTRIBUTES,
            [
                {"customer_id": customer_id, "key": key, "text_value": text, "number_value": number}
                for key, text, number in writes.attributes
            ],
        ),
        (
            _INSERT_MEMBERSHIPS,
            [
                {"segment_id": segment_id, "customer_id": customer_id, "added_at": writes.added_at}
                for segment_id in writes.segment_ids
            ],
        ),
    ]
    if writes.change is not None:
        batch.append((_INSERT_CHANGE, [{**writes.change, "customer_id": customer_id}]))
    if writes.history is not None:
        batch.append((_INSERT_HISTORY, [{**writes.history, "customer_id": customer_id}]))
    if writes.position is not None:
        team_id, position = writes.position
        batch.append((_UPDATE_POSITION, [{"target_team": team_id, "new_position": position}]))
    for statement, rows in batch:
        if rows:
            await session.execute(statement, rows)
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
        (or_(strategy.in_(list(every_load)), members.c.capacity.is_not(None)), _load_of(members.c.id)),
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
