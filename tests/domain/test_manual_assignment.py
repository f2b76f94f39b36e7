"""Manual assignment: assign_manager and unlock_assignment (team choice, lock, capacity, history, validation)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.customers import profiles
from segmenta.domain.errors import UserError
from segmenta.domain.routing import runs
from segmenta.domain.routing.manual_assignment import assign_manager, unlock_assignment
from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from segmenta.storage.models import AssignmentHistory, Customer, TeamMember
from tests.domain.helpers import database_snapshot
from tests.domain.routing_support import add_customer, add_employee, add_team


async def history(session: AsyncSession) -> list[tuple[int, int | None, int | None, int | None, int | None, str]]:
    rows = await session.execute(
        select(
            AssignmentHistory.customer_id,
            AssignmentHistory.team_before_id,
            AssignmentHistory.team_after_id,
            AssignmentHistory.manager_before_id,
            AssignmentHistory.manager_after_id,
            AssignmentHistory.cause,
        ).order_by(AssignmentHistory.id)
    )
    return [tuple(row) for row in rows.all()]  # type: ignore[misc]


async def test_assign_keeps_a_team_of_the_employee_and_moves_others_to_the_home_team(session: AsyncSession) -> None:
    ann = await add_employee(session, "Ann")
    east = await add_team(session, "east", members=[ann])
    west = await add_team(session, "west")
    lead = await add_team(session, "lead")
    session.add(TeamMember(team_id=lead.id, employee_id=ann.id, role="leader"))
    inside = await add_customer(session, "inside", team_id=east.id)
    outside = await add_customer(session, "outside", team_id=west.id)
    loose = await add_customer(session, "loose")
    await session.flush()

    assigned = await assign_manager(session, [outside.id, inside.id, loose.id], ann.id)
    assert [c.code for c in assigned] == ["outside", "inside", "loose"]
    assert {c.code: (c.team_id, c.manager_id, c.assignment_locked) for c in assigned} == {
        "inside": (east.id, ann.id, True),
        "outside": (lead.id, ann.id, True),  # the team Ann leads is her home team
        "loose": (lead.id, ann.id, True),
    }
    assert sorted(await history(session)) == sorted([
        (outside.id, west.id, lead.id, None, ann.id, "manual"),
        (inside.id, east.id, east.id, None, ann.id, "manual"),
        (loose.id, None, lead.id, None, ann.id, "manual"),
    ])


async def test_reassigning_the_same_manager_only_changes_the_lock(session: AsyncSession) -> None:
    ann = await add_employee(session, "Ann")
    team = await add_team(session, "east", members=[ann])
    customer = await add_customer(session, "c", team_id=team.id, manager_id=ann.id)
    await assign_manager(session, [customer.id], ann.id, lock=False)
    assert customer.assignment_locked is False and await history(session) == []
    await assign_manager(session, [customer.id], ann.id)
    assert customer.assignment_locked is True and await history(session) == []
    await unlock_assignment(session, [customer.id])
    assert customer.assignment_locked is False and customer.manager_id == ann.id


async def test_an_employee_without_a_team_changes_only_the_manager(session: AsyncSession) -> None:
    solo = await add_employee(session, "Solo")
    team = await add_team(session, "east")
    customer = await add_customer(session, "c", team_id=team.id)
    await assign_manager(session, [customer.id], solo.id)
    assert (customer.team_id, customer.manager_id) == (team.id, solo.id)


async def test_bad_input_is_refused_and_nothing_is_written(session: AsyncSession) -> None:
    ann = await add_employee(session, "Ann", capacity=1)
    gone = await add_employee(session, "Gone", active=False)
    customer = await add_customer(session, "c1")
    other = await add_customer(session, "c2")
    await session.commit()
    before = await database_snapshot(session)
    ann_id, gone_id, customer_id, other_id = ann.id, gone.id, customer.id, other.id
    cases = [
        (lambda: assign_manager(session, [customer_id, 999_998, 999_999], ann_id), "customer_ids", "not_found", "999998, 999999"),
        (lambda: assign_manager(session, [customer_id], 999_999), "employee_id", "not_found", "999999"),
        (lambda: assign_manager(session, [customer_id], gone_id), "employee_id", "inactive", "inactive"),
        (lambda: assign_manager(session, [customer_id, other_id], ann_id), "employee_id", "over_capacity", "capacity"),
        (lambda: assign_manager(session, [], ann_id), "customer_ids", "required", "at least one"),
        (lambda: assign_manager(session, ["x"], ann_id), "customer_ids", "invalid", "integer"),  # type: ignore[list-item]
        (lambda: unlock_assignment(session, [customer_id, 999_999]), "customer_ids", "not_found", "999999"),
    ]
    for call, field, code, words in cases:
        with pytest.raises(UserError) as raised:
            await call()
        assert (raised.value.field, raised.value.code) == (field, code)
        assert words in raised.value.message
        await session.rollback()
    assert await database_snapshot(session) == before


async def test_capacity_does_not_count_customers_already_managed(session: AsyncSession) -> None:
    ann = await add_employee(session, "Ann", capacity=2)
    mine = await add_customer(session, "mine", manager_id=ann.id)
    new = await add_customer(session, "new")
    await assign_manager(session, [mine.id, new.id], ann.id)
    assert (mine.manager_id, new.manager_id) == (ann.id, ann.id)


async def test_a_locked_manual_assignment_survives_realtime_and_apply_until_unlocked(session: AsyncSession) -> None:
    ann = await add_employee(session, "Ann")
    bob = await add_employee(session, "Bob")
    rules_team = await add_team(session, "rules_team", members=[ann])
    manual_team = await add_team(session, "manual_team", members=[bob])
    await session.commit()
    ruleset = await save_ruleset(session, "r", "all: true -> team rules_team\n")
    await activate_ruleset(session, ruleset.id)
    customer = await profiles.create_customer(session, {"code": "c", "name": "C"})
    customer_id = customer.id
    assert customer.manager_id == ann.id

    await assign_manager(session, [customer_id], bob.id)
    await profiles.update_customer(session, customer_id, {"city": "Paris"})
    await session.commit()
    run = await runs.apply_ruleset(session, ruleset.id)
    assert run.status == "succeeded" and run.summary["locked"] == 1
    stored = await session.get(Customer, customer_id, populate_existing=True)
    assert stored is not None and (stored.team_id, stored.manager_id) == (manual_team.id, bob.id)

    await unlock_assignment(session, [customer_id])
    await session.commit()
    stored = await session.get(Customer, customer_id, populate_existing=True)
    assert stored is not None and (stored.team_id, stored.manager_id) == (manual_team.id, bob.id)
    await profiles.update_customer(session, customer_id, {"city": "Lyon"})
    await session.commit()
    stored = await session.get(Customer, customer_id, populate_existing=True)
    assert stored is not None and (stored.team_id, stored.manager_id) == (rules_team.id, ann.id)
    causes = [row[-1] for row in await history(session)]
    assert causes == ["realtime", "manual", "realtime"]
