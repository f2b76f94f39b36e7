"""Round-robin positions and capacities hold when many connections route at once (docs/routing.md:
assignment state lives in the database, so several server processes stay correct); each task here has its own
connection, as a separate server process would."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain.customers import profiles
from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from segmenta.storage.engine import begin_writer, session_factory
from segmenta.storage.models import Customer, Team
from tests.domain.routing_support import add_employee, add_team

MEMBERS = 3
CAPACITY = 4


async def setup(engine: AsyncEngine, strategy: str) -> dict[str, int]:
    async with session_factory(engine)() as session:
        members = [await add_employee(session, f"Member {n}", capacity=CAPACITY) for n in range(MEMBERS)]
        team = await add_team(session, "pool", strategy=strategy, members=members)
        ruleset = await save_ruleset(session, "pool", "otherwise -> team pool\n")
        await activate_ruleset(session, ruleset.id)
        await session.commit()
        return {"team": team.id, **{member.name: member.id for member in members}}


async def create_concurrently(engine: AsyncEngine, codes: list[str]) -> None:
    async def create(code: str) -> None:
        async with session_factory(engine)() as session:
            await begin_writer(session)
            await profiles.create_customer(session, {"code": code, "name": code})
            await session.commit()

    await asyncio.gather(*(create(code) for code in codes))


async def managers(engine: AsyncEngine) -> Counter[int | None]:
    async with session_factory(engine)() as session:
        return Counter((await session.scalars(select(Customer.manager_id))).all())


async def test_concurrent_round_robin_stays_balanced_and_within_capacity(engine: AsyncEngine) -> None:
    ids = await setup(engine, "round_robin")
    await create_concurrently(engine, [f"c{n:02d}" for n in range(MEMBERS * 3)])
    loads = await managers(engine)
    # Three rounds of three members: exactly three each (balanced within one, no lost position update).
    assert sorted(loads.values()) == [3, 3, 3] and None not in loads

    await create_concurrently(engine, [f"d{n:02d}" for n in range(MEMBERS * CAPACITY - MEMBERS * 3 + 2)])
    loads = await managers(engine)
    assert {ids[f"Member {n}"]: loads[ids[f"Member {n}"]] for n in range(MEMBERS)} == {
        ids[f"Member {n}"]: CAPACITY for n in range(MEMBERS)
    }
    assert loads[None] == 2  # nobody had capacity left: team set, manager empty
    async with session_factory(engine)() as session:
        teams = await session.scalar(select(func.count()).where(Customer.team_id == ids["team"]))
        position = await session.scalar(select(Team.round_robin_position).where(Team.id == ids["team"]))
    assert teams == MEMBERS * CAPACITY + 2 and position is not None


async def test_concurrent_least_loaded_never_exceeds_capacity(engine: AsyncEngine) -> None:
    await setup(engine, "least_loaded")
    await create_concurrently(engine, [f"c{n:02d}" for n in range(MEMBERS * CAPACITY + 3)])
    loads = await managers(engine)
    assert sorted(count for manager, count in loads.items() if manager is not None) == [CAPACITY] * MEMBERS
    assert loads[None] == 3
