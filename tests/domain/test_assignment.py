"""Manager assignment strategies (docs/routing.md, "Assignment (team → manager)"): in memory, then
against the database."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.routing.assignment import (
    Candidate,
    MemberState,
    TeamAssigner,
    load_team_assigners,
    save_positions,
)
from segmenta.storage.models import Team
from tests.domain.routing_support import add_customer, add_employee, add_team


async def assign_managers(session: AsyncSession, team_id: int, batch: list[Candidate]) -> dict[int, int | None]:
    """Managers for customers joining one team, reading and storing its shared state as routing does."""
    assigner = (await load_team_assigners(session, [team_id]))[team_id]
    result = assigner.assign_all(batch)
    await save_positions(session, [assigner])
    return result


def members(*capacities: int | None, loads: tuple[int, ...] | None = None) -> list[MemberState]:
    loads = loads or (0,) * len(capacities)
    return [MemberState(employee_id=i + 1, capacity=c, load=load) for i, (c, load) in enumerate(zip(capacities, loads, strict=True))]


def candidates(count: int, industry: str | None = None, region: str | None = None) -> list[Candidate]:
    return [Candidate(customer_id=i + 1, industry=industry, region=region) for i in range(count)]


def test_round_robin_takes_turns_from_the_stored_position() -> None:
    assigner = TeamAssigner(1, "round_robin", members(None, None, None), position=1)
    assigned = [assigner.assign(c) for c in candidates(5)]
    assert assigned == [2, 3, 1, 2, 3]
    assert assigner.position == 0  # the next turn is the first member again


@settings(max_examples=100, deadline=None)
@given(member_count=st.integers(1, 8), customers=st.integers(0, 60), start=st.integers(0, 20))
def test_round_robin_balances_within_one(member_count: int, customers: int, start: int) -> None:
    assigner = TeamAssigner(1, "round_robin", members(*([None] * member_count)), position=start)
    counts = Counter(assigner.assign(c) for c in candidates(customers))
    per_member = [counts.get(i + 1, 0) for i in range(member_count)]
    assert max(per_member) - min(per_member) <= 1
    assert sum(per_member) == customers


def reference_choice(
    strategy: str, states: list[MemberState], position: int, industry: str | None, region: str | None
) -> int | None:
    """The assignment rules of docs/routing.md read literally: the preferred members with room first,
    then every member with room; least_loaded takes the fewest customers (ties: lowest id), round_robin the first
    member at or after the position, cyclically.  The index of the chosen member, or None."""

    def pick(pool: list[int]) -> int | None:
        room = [i for i in pool if states[i].capacity is None or states[i].load < (states[i].capacity or 0)]
        if not room:
            return None
        if strategy == "least_loaded":
            return min(room, key=lambda i: (states[i].load, states[i].employee_id))
        return min(room, key=lambda i: (i - position) % len(states))

    preferred = [
        i
        for i, state in enumerate(states)
        if (industry is not None and industry in state.specialties)
        or (region is not None and region in state.regions)
    ]
    chosen = pick(preferred) if preferred else None
    return chosen if chosen is not None else pick(list(range(len(states))))


_labels = st.sampled_from(["tech", "retail", "east", "west"])


@settings(max_examples=200, deadline=None)
@given(
    strategy=st.sampled_from(["round_robin", "least_loaded"]),
    team=st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(0, 6)),  # capacity
            st.integers(0, 5),  # customers already managed
            st.frozensets(_labels, max_size=2),  # specialties
            st.frozensets(_labels, max_size=2),  # regions
        ),
        min_size=1,
        max_size=6,
    ),
    start=st.integers(0, 10),
    customers=st.lists(st.tuples(st.one_of(st.none(), _labels), st.one_of(st.none(), _labels)), max_size=40),
)
def test_the_assigner_agrees_with_the_rules_read_literally(
    strategy: str,
    team: list[tuple[int | None, int, frozenset[str], frozenset[str]]],
    start: int,
    customers: list[tuple[str | None, str | None]],
) -> None:
    """The fast path (`pick`) against a plain reading of docs/routing.md, customer after customer,
    with capacities, existing loads, specialties and regions drawn at random."""

    def states() -> list[MemberState]:
        return [
            MemberState(i + 1, capacity, load, specialties=specialties, regions=regions)
            for i, (capacity, load, specialties, regions) in enumerate(team)
        ]

    assigner = TeamAssigner(1, strategy, states(), position=start)
    model = states()
    position = start % len(model)
    nobody = 0
    for industry, region in customers:
        expected = reference_choice(strategy, model, position, industry, region)
        chosen = assigner.pick(industry, region)
        if expected is None:
            assert chosen is None
            nobody += 1
            continue
        assert chosen == model[expected].employee_id
        model[expected].load += 1
        if strategy == "round_robin":
            position = (expected + 1) % len(model)
    assert [m.load for m in assigner.members] == [m.load for m in model]
    assert (assigner.assigned, assigner.unassigned) == (len(customers) - nobody, nobody)


def test_round_robin_skips_members_without_capacity() -> None:
    assigner = TeamAssigner(1, "round_robin", members(1, None, 0))
    assert [assigner.assign(c) for c in candidates(4)] == [1, 2, 2, 2]


def test_nobody_with_capacity_leaves_the_manager_empty_and_counts_it() -> None:
    assigner = TeamAssigner(1, "least_loaded", members(1, 1, loads=(1, 0)))
    assert [assigner.assign(c) for c in candidates(3)] == [2, None, None]
    assert (assigner.assigned, assigner.unassigned) == (1, 2)


def test_least_loaded_fills_the_emptiest_member_ties_to_lowest_id() -> None:
    assigner = TeamAssigner(1, "least_loaded", members(None, None, None, loads=(3, 1, 1)))
    assert [assigner.assign(c) for c in candidates(5)] == [2, 3, 2, 3, 1]
    assert [m.load for m in assigner.members] == [4, 3, 3]


def test_preferred_members_first_then_everyone() -> None:
    team = [
        MemberState(1, capacity=None, load=0),
        MemberState(2, capacity=2, load=0, specialties=frozenset({"finance"})),
        MemberState(3, capacity=None, load=0, regions=frozenset({"east"})),
    ]
    assigner = TeamAssigner(1, "round_robin", team)
    finance = [Candidate(i, industry="finance") for i in range(3)]
    assert [assigner.assign(c) for c in finance] == [2, 2, 3]  # member 2 full → round robin over all
    east = Candidate(10, industry="retail", region="east")
    assert assigner.assign(east) == 3
    either = Candidate(11, industry="finance", region="east")
    assert assigner.assign(either) == 3  # 2 is full; 3 prefers the region


def test_least_loaded_prefers_specialists_even_when_busier() -> None:
    team = [MemberState(1, None, 0), MemberState(2, None, 5, specialties=frozenset({"retail"}))]
    assigner = TeamAssigner(1, "least_loaded", team)
    assert assigner.assign(Candidate(1, industry="retail")) == 2
    assert assigner.assign(Candidate(2, industry="mining")) == 1


def test_manual_strategy_assigns_nobody() -> None:
    assigner = TeamAssigner(1, "manual", members(None))
    assert assigner.assign(Candidate(1)) is None
    assert assigner.unassigned == 0


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError):
        TeamAssigner(1, "lottery", [])


async def test_loads_come_from_the_database_and_inactive_members_are_skipped(session: AsyncSession) -> None:
    busy = await add_employee(session, "Busy", capacity=2)
    idle = await add_employee(session, "Idle", capacity=2)
    away = await add_employee(session, "Away", active=False)
    team = await add_team(session, "desk", strategy="least_loaded", members=[busy, idle, away])
    await add_customer(session, "c1", manager_id=busy.id)
    await add_customer(session, "c2", manager_id=busy.id)
    await add_customer(session, "c3", manager_id=idle.id)
    result = await assign_managers(session, team.id, candidates(3))
    assert result == {1: idle.id, 2: None, 3: None}


async def test_round_robin_position_is_stored_for_the_next_call(session: AsyncSession) -> None:
    first = await add_employee(session, "First")
    second = await add_employee(session, "Second")
    team = await add_team(session, "desk", members=[first, second])
    assert await assign_managers(session, team.id, candidates(1)) == {1: first.id}
    assert await assign_managers(session, team.id, candidates(1)) == {1: second.id}
    assert await assign_managers(session, team.id, candidates(1)) == {1: first.id}
    position = await session.scalar(select(Team.round_robin_position).where(Team.id == team.id))
    assert position == 1


async def test_an_employee_in_two_teams_has_one_capacity(session: AsyncSession) -> None:
    shared = await add_employee(session, "Shared", capacity=1)
    north = await add_team(session, "north", members=[shared])
    south = await add_team(session, "south", members=[shared])
    assigners = await load_team_assigners(session, [north.id, south.id])
    assert assigners[north.id].assign(Candidate(1)) == shared.id
    assert assigners[south.id].assign(Candidate(2)) is None
    await save_positions(session, assigners.values())
