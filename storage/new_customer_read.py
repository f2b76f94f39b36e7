"""What creating or re-routing one customer reads, in one statement (domain/routing/realtime_create.py and
domain/routing/realtime_reads.py say what they need).

:func:`read_new_customer` runs one UNION ALL: whether the code is taken, the active
ruleset and the day's realtime run ("head"), the chosen team with its active members
(locked on PostgreSQL; their loads on SQLite) and the segments joined.  Re-routing one
existing customer reads its team and segments with it too, without the head, the
members only when it needs a manager (:class:`ExistingCustomer`).

Every statement is built once per process and executed with bound parameters: an
executed statement object keeps its cache key, so a call costs neither compilation
nor the walk over the statement that computes the key.  (Building the statements
per call cost more than running them.)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Integer,
    String,
    Text,
    bindparam,
    case,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from segmenta.storage.models import (
    Customer,
    Employee,
    EvaluationRun,
    RulesetVersion,
    Segment,
    Team,
    TeamMember,
)

_customers = Customer.__table__

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
    # An inactive team takes no customers: to routing it is as absent as a deleted one.
    team_query = select(Team.id, Team.strategy, Team.round_robin_position).where(
        Team.key == bindparam("team_key", type_=String()), Team.active.is_(True)
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
                load_of(members.c.id),
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


def load_of(employee_id: Any) -> Any:
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
