"""Team → account manager assignment (docs/routing.md, 'Assignment (team → manager)').

A team's strategy decides how a customer who joins the team gets a manager:

* ``round_robin`` — members take turns, in employee-id order, starting at the
  team's stored ``round_robin_position``;
* ``least_loaded`` — the member with the fewest customers (ties: lowest employee id);
* ``manual`` — the team is set, the manager is left to a person.

Both automatic strategies consider only *active* members with free capacity
(``capacity`` None = unlimited; load = customers whose manager is the employee)
and prefer members whose ``specialties`` contain the customer's industry or whose
``regions`` contain its region: the preferred pool first, then everyone.  When no
member has room the customer keeps the team without a manager and the caller
reports it.

The work is split so that a bulk run touches the database a constant number of
times per team: :func:`load_team_assigners` locks the teams (and their members'
employee rows) and reads members and loads once, :class:`TeamAssigner` assigns
any number of customers in memory, and :func:`save_positions` stores the
round-robin positions back in the same transaction.  Locks are taken in id order
(teams, then employees) so concurrent runs on PostgreSQL never deadlock each
other and never both fill the last free slot of an employee.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.staff.vocabulary import AUTOMATIC_STRATEGIES, TEAM_STRATEGIES
from segmenta.storage.models import Customer, Employee, Team, TeamMember


@dataclass(frozen=True)
class Candidate:
    """A customer who needs a manager in some team: only what the preference reads."""

    customer_id: int
    industry: str | None = None
    region: str | None = None


@dataclass
class MemberState:
    employee_id: int
    capacity: int | None
    load: int
    specialties: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()

    @property
    def has_room(self) -> bool:
        return self.capacity is None or self.load < self.capacity

    def prefers(self, industry: str | None, region: str | None) -> bool:
        return (industry is not None and industry in self.specialties) or (region is not None and region in self.regions)


@dataclass
class TeamAssigner:
    """Assigns managers within one team, in memory; `members` are in employee-id order."""

    team_id: int
    strategy: str
    members: list[MemberState]
    position: int = 0
    assigned: int = 0
    unassigned: int = 0
    _preferred_cache: dict[tuple[str | None, str | None], tuple[int, ...]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        if self.strategy not in TEAM_STRATEGIES:
            raise ValueError(f"unknown assignment strategy {self.strategy!r}")
        if self.members:
            self.position %= len(self.members)
        else:
            self.position = 0

    @property
    def automatic(self) -> bool:
        return self.strategy in AUTOMATIC_STRATEGIES

    @property
    def position_to_store(self) -> int | None:
        """The round-robin position to write back once this assigner handed out a manager; else None."""
        return self.position if self.strategy == "round_robin" and self.assigned else None

    def assign(self, candidate: Candidate) -> int | None:
        """The manager for `candidate` (and count it in that member's load), or None."""
        return self.pick(candidate.industry, candidate.region)

    def pick(self, industry: str | None, region: str | None) -> int | None:
        """`assign` for a customer given by the two fields the preference reads.

        A bulk run calls this once per customer needing a manager (a million on a
        first apply), so it avoids building a candidate and a list per call.
        """
        if not self.automatic or not self.members:
            return None
        key = (industry, region)
        preferred = self._preferred_cache.get(key)
        if preferred is None:
            preferred = tuple(i for i, member in enumerate(self.members) if member.prefers(industry, region))
            self._preferred_cache[key] = preferred
        chosen = self._choose(preferred) if preferred else None
        if chosen is None:
            chosen = self._choose(range(len(self.members)))
        if chosen is None:
            self.unassigned += 1
            return None
        member = self.members[chosen]
        member.load += 1
        self.assigned += 1
        if self.strategy == "round_robin":
            self.position = (chosen + 1) % len(self.members)
        return member.employee_id

    def assign_all(self, candidates: Iterable[Candidate]) -> dict[int, int | None]:
        return {candidate.customer_id: self.assign(candidate) for candidate in candidates}

    def _choose(self, indexes: Sequence[int]) -> int | None:
        """Among `indexes` (ascending) of members with room: the least loaded (ties: lowest
        employee id, i.e. lowest index), or for round robin the first at or after the
        current position, cyclically."""
        members = self.members
        if self.strategy == "least_loaded":
            best: int | None = None
            best_load = 0
            for i in indexes:
                member = members[i]
                if member.has_room and (best is None or member.load < best_load):
                    best, best_load = i, member.load
            return best
        start = bisect_left(indexes, self.position)
        count = len(indexes)
        for offset in range(count):
            i = indexes[(start + offset) % count]
            if members[i].has_room:
                return i
        return None


async def current_loads(session: AsyncSession, employee_ids: Collection[int]) -> dict[int, int]:
    """Customers per manager, for the given employees, as stored now."""
    if not employee_ids:
        return {}
    rows = await session.execute(
        select(Customer.manager_id, func.count())
        .where(Customer.manager_id.in_(sorted(employee_ids)))
        .group_by(Customer.manager_id)
    )
    # manager_id is never NULL here (the IN filter); the test narrows its type.
    return {manager_id: count for manager_id, count in rows.all() if manager_id is not None}


async def load_team_assigners(
    session: AsyncSession,
    team_ids: Collection[int],
    *,
    loads: Mapping[int, int] | None = None,
) -> dict[int, TeamAssigner]:
    """Lock the teams and their active members, and build one assigner per team.

    `loads` overrides the stored customer counts (a bulk run passes the loads the
    customers will have after the run's own departures); employees missing from it
    count as 0.  Without it the loads are read from ``customers``.
    """
    if not team_ids:
        return {}
    if not has_row_locks(session):
        team_rows, members, stored_loads = await _read_teams_in_one_statement(session, team_ids, loads is None)
        return build_assigners(team_rows, members, stored_loads if loads is None else loads)
    teams = (
        await session.execute(
            select(Team.id, Team.strategy, Team.round_robin_position)
            .where(Team.id.in_(sorted(team_ids)))
            .order_by(Team.id)
            # NO KEY UPDATE: turns between routers, yet foreign-key checks of others' inserts pass.
            .with_for_update(key_share=True)
        )
    ).all()
    member_rows = (
        await session.execute(
            select(
                TeamMember.team_id,
                Employee.id,
                Employee.capacity,
                Employee.specialties,
                Employee.regions,
            )
            .join(Employee, Employee.id == TeamMember.employee_id)
            .where(TeamMember.team_id.in_(sorted(team_ids)), Employee.active.is_(True))
            .order_by(TeamMember.team_id, Employee.id)
        )
    ).all()
    employee_ids = sorted({row[1] for row in member_rows})
    if employee_ids:
        # Serialises concurrent assignment to the same people across teams.
        await session.execute(
            select(Employee.id).where(Employee.id.in_(employee_ids)).order_by(Employee.id).with_for_update(key_share=True)
        )
    if loads is None:
        loads = await current_loads(session, employee_ids)
    return build_assigners(teams, member_rows, loads)


def has_row_locks(session: AsyncSession) -> bool:
    """Whether the session's database has row locks (PostgreSQL) or not (SQLite)."""
    # SQLite has no row locks (FOR UPDATE compiles to nothing): a writer holds the
    # whole database, so the lock statements would be round trips that lock nothing.
    return session.sync_session.get_bind().dialect.name != "sqlite"


_TeamRow = tuple[int, str, int | None]
_MemberRow = tuple[int, int, int | None, Sequence[str] | None, Sequence[str] | None]


async def _read_teams_in_one_statement(
    session: AsyncSession, team_ids: Collection[int], with_loads: bool
) -> tuple[list[_TeamRow], list[_MemberRow], dict[int, int]]:
    """Teams, their active members (employee-id order) and, when asked, the members' stored loads."""
    load = (
        select(func.count()).select_from(Customer).where(Customer.manager_id == Employee.id).scalar_subquery()
        if with_loads
        else literal(0)
    )
    rows = await session.execute(
        select(
            Team.id,
            Team.strategy,
            Team.round_robin_position,
            Employee.id,
            Employee.capacity,
            Employee.specialties,
            Employee.regions,
            load,
        )
        .select_from(Team)
        .outerjoin(TeamMember, TeamMember.team_id == Team.id)
        .outerjoin(Employee, and_(Employee.id == TeamMember.employee_id, Employee.active.is_(True)))
        .where(Team.id.in_(sorted(team_ids)))
        .order_by(Team.id, Employee.id)
    )
    teams: dict[int, _TeamRow] = {}
    members: list[_MemberRow] = []
    loads: dict[int, int] = {}
    for team_id, strategy, position, employee_id, capacity, specialties, regions, stored_load in rows:
        teams.setdefault(team_id, (team_id, strategy, position))
        if employee_id is not None:
            members.append((team_id, employee_id, capacity, specialties, regions))
            if stored_load:
                loads[employee_id] = stored_load
    return list(teams.values()), members, loads


def build_assigners(
    teams: Iterable[Sequence[Any]], member_rows: Iterable[Sequence[Any]], loads: Mapping[int, int]
) -> dict[int, TeamAssigner]:
    """Assigners from rows already read: teams (id, strategy, position), members
    (team id, employee id, capacity, specialties, regions) in employee-id order, loads by employee."""
    # One MemberState per employee, shared by every team they belong to, so a load
    # taken in one team counts against their capacity in the others.
    states: dict[int, MemberState] = {}
    members_by_team: dict[int, list[MemberState]] = {team_id: [] for team_id, _, _ in teams}
    for team_id, employee_id, capacity, specialties, regions in member_rows:
        state = states.get(employee_id)
        if state is None:
            state = MemberState(
                employee_id=employee_id,
                capacity=capacity,
                load=loads.get(employee_id, 0),
                specialties=frozenset(specialties or ()),
                regions=frozenset(regions or ()),
            )
            states[employee_id] = state
        members_by_team[team_id].append(state)
    return {
        team_id: TeamAssigner(team_id, strategy, members_by_team[team_id], position or 0)
        for team_id, strategy, position in teams
    }


async def save_positions(session: AsyncSession, assigners: Iterable[TeamAssigner]) -> None:
    """Store the round-robin positions the assigners reached (same transaction as the assignments)."""
    for assigner in assigners:
        if assigner.position_to_store is not None:
            await session.execute(
                update(Team).where(Team.id == assigner.team_id).values(round_robin_position=assigner.position_to_store)
            )
