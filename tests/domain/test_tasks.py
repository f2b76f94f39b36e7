"""Follow-up tasks by hand: create, complete (records an interaction), cancel, reassign, and an agent's scope."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.access.scope import EVERY_CUSTOMER, Scope, scope_of
from segmenta.domain.errors import UserError
from segmenta.domain.tasks import service
from segmenta.domain.tasks.records import visible
from segmenta.storage.models import Interaction, Task
from tests.domain.helpers import database_snapshot
from tests.domain.routing_support import add_customer, add_employee, add_team

NOW = datetime(2026, 12, 1, 9, 0)


async def _people(session: AsyncSession) -> dict[str, int]:
    ann, bob, cy = [await add_employee(session, name) for name in ("Ann", "Bob", "Cy")]
    east = await add_team(session, "east", members=[bob])
    managed = await add_customer(session, "managed", team_id=east.id, manager_id=ann.id)
    queued = await add_customer(session, "queued", team_id=east.id)
    other = await add_customer(session, "other")
    return {"ann": ann.id, "bob": bob.id, "cy": cy.id, "east": east.id,
            "managed": managed.id, "queued": queued.id, "other": other.id}


async def test_a_task_goes_to_the_manager_or_else_the_team_queue(session: AsyncSession) -> None:
    ids = await _people(session)
    due = NOW + timedelta(days=2)
    managed = await service.create_task(session, EVERY_CUSTOMER, customer_id=ids["managed"], kind="call_back", due_at=due, now=NOW)
    queued = await service.create_task(session, EVERY_CUSTOMER, customer_id=ids["queued"], kind="call_back", due_at=due, now=NOW)
    nobody = await service.create_task(session, EVERY_CUSTOMER, customer_id=ids["other"], kind="visit", due_at=due, now=NOW)
    assert (managed.employee_id, managed.team_id, managed.title, managed.status, managed.source) == (
        ids["ann"], None, "Call back", "open", "manual")
    assert (queued.employee_id, queued.team_id) == (None, ids["east"])
    assert (nobody.employee_id, nobody.team_id) == (None, None)


async def test_a_second_open_task_of_a_kind_is_a_conflict_and_writes_nothing(session: AsyncSession) -> None:
    ids = await _people(session)
    await service.create_task(session, EVERY_CUSTOMER, customer_id=ids["managed"], kind="call_back", due_at=NOW, now=NOW)
    before = await database_snapshot(session)
    with pytest.raises(UserError) as raised:
        await service.create_task(session, EVERY_CUSTOMER, customer_id=ids["managed"], kind="call_back", due_at=NOW, now=NOW)
    assert (raised.value.code, raised.value.field) == ("conflict", "kind")
    assert await database_snapshot(session) == before


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"kind": "  "}, "kind", "required"),
        ({"kind": "k" * 101}, "kind", "too_long"),
        ({"due_at": "tomorrow"}, "due_at", "invalid"),
        ({"due_at": NOW + timedelta(days=4000)}, "due_at", "out_of_range"),
        ({"due_at": "0001-01-01T00:00:00+05:00"}, "due_at", "out_of_range"),  # before year 1 in UTC
        ({"employee_id": 999999}, "assignee_id", "not_found"),
        ({"customer_id": 999999}, "customer_id", "not_found"),
    ],
)
async def test_bad_input_is_refused_before_anything_is_written(
    session: AsyncSession, changes: dict[str, object], field: str, code: str
) -> None:
    ids = await _people(session)
    arguments: dict[str, object] = {"customer_id": ids["managed"], "kind": "call", "due_at": NOW, **changes}
    before = await database_snapshot(session)
    with pytest.raises(UserError) as raised:
        await service.create_task(session, EVERY_CUSTOMER, now=NOW, **arguments)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert raised.value.code in (code, "invalid") if code == "too_long" else raised.value.code == code
    assert await database_snapshot(session) == before


async def test_completing_records_an_interaction_and_moves_last_contact(session: AsyncSession) -> None:
    ids = await _people(session)
    task = await service.create_task(session, EVERY_CUSTOMER, customer_id=ids["managed"], kind="call_back", due_at=NOW, now=NOW)
    done = await service.complete_task(session, EVERY_CUSTOMER, task.id, outcome="ordered more", completed_by_id=ids["ann"], now=NOW)
    assert (done.status, done.outcome, done.completed_at, done.completed_by_id) == ("done", "ordered more", NOW, ids["ann"])
    interaction = (await session.execute(select(Interaction))).scalar_one()
    assert (interaction.kind, interaction.employee_id, interaction.occurred_at, interaction.summary) == (
        "call", ids["ann"], NOW, "Call back: ordered more")
    from segmenta.storage.models import Customer
    customer = await session.get(Customer, ids["managed"], populate_existing=True)
    assert customer is not None and customer.last_contact_at == NOW and customer.interaction_count == 1
    with pytest.raises(UserError) as again:
        await service.complete_task(session, EVERY_CUSTOMER, task.id, now=NOW)
    assert again.value.code == "conflict"
    # Done, the kind is free again for a new open task.
    await service.create_task(session, EVERY_CUSTOMER, customer_id=ids["managed"], kind="call_back", due_at=NOW, now=NOW)


async def test_cancel_and_reassign(session: AsyncSession) -> None:
    ids = await _people(session)
    task = await service.create_task(session, EVERY_CUSTOMER, customer_id=ids["queued"], kind="visit", due_at=NOW, now=NOW)
    moved = await service.reassign_task(session, EVERY_CUSTOMER, task.id, employee_id=ids["cy"])
    assert (moved.employee_id, moved.team_id) == (ids["cy"], None)
    back = await service.reassign_task(session, EVERY_CUSTOMER, task.id)
    assert (back.employee_id, back.team_id) == (None, ids["east"])
    cancelled = await service.cancel_task(session, EVERY_CUSTOMER, task.id, reason="moved away", now=NOW)
    assert (cancelled.status, cancelled.outcome) == ("cancelled", "moved away")
    with pytest.raises(UserError) as raised:
        await service.reassign_task(session, EVERY_CUSTOMER, task.id, employee_id=ids["ann"])
    assert raised.value.code == "conflict"
    interactions = await session.scalar(select(func.count()).select_from(Interaction))
    assert interactions == 0  # cancelling records no contact


async def test_an_agent_sees_and_acts_on_only_their_own_and_their_customers_tasks(session: AsyncSession) -> None:
    ids = await _people(session)
    tasks = {
        name: (await service.create_task(session, EVERY_CUSTOMER, customer_id=ids[customer], kind="call",
                                         due_at=NOW, now=NOW, **extra)).id
        for name, customer, extra in [
            ("ann_managed", "managed", {}),  # Ann manages the customer
            ("east_queue", "queued", {}),  # the queue of Bob's team
            ("cy_other", "other", {"employee_id": ids["cy"]}),  # Cy's own, on nobody's customer
        ]
    }
    seen = {
        agent: set((await session.execute(select(Task.id).where(visible(scope_of("agent", ids[agent]))))).scalars())  # type: ignore[arg-type]
        for agent in ("ann", "bob", "cy")
    }
    assert seen == {
        "ann": {tasks["ann_managed"]},
        "bob": {tasks["east_queue"], tasks["ann_managed"]},  # managed is a customer of Bob's team
        "cy": {tasks["cy_other"]},
    }
    cy = Scope(restricted=True, employee_id=ids["cy"])
    with pytest.raises(UserError) as raised:
        await service.complete_task(session, cy, tasks["ann_managed"], now=NOW)
    assert (raised.value.code, raised.value.field) == ("forbidden", "id")
    with pytest.raises(UserError) as creating:
        await service.create_task(session, cy, customer_id=ids["managed"], kind="x", due_at=NOW, now=NOW)
    assert creating.value.code == "forbidden"
    ann = Scope(restricted=True, employee_id=ids["ann"])
    with pytest.raises(UserError) as assigning:
        await service.create_task(session, ann, customer_id=ids["managed"], kind="x", due_at=NOW, now=NOW, employee_id=ids["bob"])
    assert assigning.value.code == "forbidden"
    done = await service.complete_task(session, cy, tasks["cy_other"], completed_by_id=ids["cy"], now=NOW)
    assert done.status == "done"
