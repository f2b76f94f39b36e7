"""Tasks from rules (`-> task KIND [within N days]`, docs/rule-language.md "Tasks"): exactly one per
customer and kind under apply, re-apply, the schedule and real-time routing; re-armed only when the
condition has stopped holding; counted, not created, by a preview."""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from segmenta.domain.access.scope import EVERY_CUSTOMER
from segmenta.domain.customers import profiles
from segmenta.domain.routing import runs
from segmenta.domain.routing.explanations import explain_customer
from segmenta.domain.routing.realtime import reevaluate_customer
from segmenta.domain.routing.scheduler import Scheduler
from segmenta.domain.tasks import service
from segmenta.storage.engine import session_factory
from segmenta.storage.models import Customer, EvaluationRun, Task, TaskTrigger, utcnow
from tests.domain.routing_support import add_customer, add_employee, add_team
from tests.domain.test_runs import activate

RULES = """
care: open_complaints > 0 -> task complaint_follow_up within 1 day
big: size = large -> team desk, task regular_visit
queued: size = small -> team queue_desk, task "welcome call" within 3 days
"""


async def _world(session: AsyncSession) -> dict[str, int]:
    ann = await add_employee(session, "Ann")
    desk = await add_team(session, "desk", members=[ann])
    queue = await add_team(session, "queue_desk", strategy="manual")
    c1 = await add_customer(session, "c1", size="large", open_complaints=1)
    c2 = await add_customer(session, "c2", size="large")
    c3 = await add_customer(session, "c3", size="small")
    await session.commit()
    return {"ann": ann.id, "desk": desk.id, "queue": queue.id, "c1": c1.id, "c2": c2.id, "c3": c3.id}


async def _tasks(session: AsyncSession) -> list[tuple[str, str, str, int | None, int | None, str | None]]:
    """(customer code, kind, status, employee, team, rule), in a stable order."""
    rows = await session.execute(
        select(Customer.code, Task.kind, Task.status, Task.employee_id, Task.team_id, Task.rule)
        .join(Customer, Customer.id == Task.customer_id)
        .order_by(Customer.code, Task.kind, Task.id)
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]


async def _apply(session: AsyncSession, ruleset_id: int) -> EvaluationRun:
    run = await runs.apply_ruleset(session, ruleset_id)
    assert run.status == "succeeded", run.error
    return run


def _counts(run: EvaluationRun) -> dict[tuple[str, str], int]:
    return {(item["kind"], item["rule"]): item["count"] for item in run.summary["tasks"]}


async def test_preview_counts_apply_creates_once_and_nothing_duplicates(session: AsyncSession, engine: AsyncEngine) -> None:
    ids = await _world(session)
    ruleset_id = await activate(session, RULES)

    preview = await runs.preview_ruleset(session, ruleset_id)
    assert _counts(preview) == {("complaint_follow_up", "care"): 1, ("regular_visit", "big"): 2, ("welcome call", "queued"): 1}
    assert await _tasks(session) == []

    before = utcnow()
    first = await _apply(session, ruleset_id)
    assert _counts(first) == _counts(preview)
    expected = [
        ("c1", "complaint_follow_up", "open", ids["ann"], None, "care"),
        ("c1", "regular_visit", "open", ids["ann"], None, "big"),  # the manager the apply gave
        ("c2", "regular_visit", "open", ids["ann"], None, "big"),
        ("c3", "welcome call", "open", None, ids["queue"], "queued"),  # no manager: the team's queue
    ]
    assert await _tasks(session) == expected
    welcome = (await session.execute(select(Task).where(Task.kind == "welcome call"))).scalar_one()
    assert (welcome.title, welcome.source, welcome.ruleset_id, welcome.run_id) == ("Welcome call", "rule", ruleset_id, first.id)
    assert before + timedelta(days=3) <= welcome.due_at <= utcnow() + timedelta(days=3)

    again = await _apply(session, ruleset_id)
    assert set(_counts(again).values()) == {0}
    await profiles.update_customer(session, ids["c1"], {"name": "renamed"})  # real-time re-evaluation
    await reevaluate_customer(session, ids["c3"])
    await session.commit()
    scheduled = await Scheduler(session_factory(engine), 3600, holder="test").run_once()
    assert scheduled is not None and scheduled.status == "succeeded"
    assert await _tasks(session) == expected
    assert (await runs.preview_ruleset(session, ruleset_id)).summary["tasks"][0]["count"] == 0


async def test_a_done_task_comes_back_only_after_the_condition_stopped_holding(session: AsyncSession) -> None:
    ids = await _world(session)
    ruleset_id = await activate(session, RULES)
    await _apply(session, ruleset_id)
    complaint = (await session.execute(select(Task).where(Task.kind == "complaint_follow_up"))).scalar_one()

    # Done while the condition still holds: completing re-routes the customer in real time, and
    # neither that nor an apply makes the task again.
    await service.complete_task(session, EVERY_CUSTOMER, complaint.id, outcome="called")
    await session.commit()
    await _apply(session, ruleset_id)
    assert [row[2] for row in await _tasks(session) if row[1] == "complaint_follow_up"] == ["done"]

    # The condition stops holding (seen in real time): re-armed; it holds again: a new task.
    await session.execute(update(Customer).where(Customer.id == ids["c1"]).values(open_complaints=0))
    await reevaluate_customer(session, ids["c1"])
    held = (await session.execute(select(TaskTrigger.kind).where(TaskTrigger.customer_id == ids["c1"]))).scalars().all()
    assert held == ["regular_visit"]
    await session.execute(update(Customer).where(Customer.id == ids["c1"]).values(open_complaints=2))
    await reevaluate_customer(session, ids["c1"])
    await session.commit()
    assert [row[2] for row in await _tasks(session) if row[1] == "complaint_follow_up"] == ["done", "open"]

    # The same through applies only: cancelled, the condition stops (no real-time), then holds again.
    visit = (await session.execute(select(Task).where(Task.kind == "regular_visit", Task.customer_id == ids["c2"]))).scalar_one()
    await service.cancel_task(session, EVERY_CUSTOMER, visit.id)
    await session.execute(update(Customer).where(Customer.id == ids["c2"]).values(size="medium"))
    await session.commit()
    await _apply(session, ruleset_id)
    assert [r[2] for r in await _tasks(session) if r[0] == "c2"] == ["cancelled"]
    await session.execute(update(Customer).where(Customer.id == ids["c2"]).values(size="large"))
    await session.commit()
    back = await _apply(session, ruleset_id)
    assert _counts(back)[("regular_visit", "big")] == 1
    assert [r[2] for r in await _tasks(session) if r[0] == "c2"] == ["cancelled", "open"]


async def test_an_open_manual_task_of_the_kind_stands_for_the_rule_and_new_customers_get_theirs(session: AsyncSession) -> None:
    ids = await _world(session)
    manual = await service.create_task(session, EVERY_CUSTOMER, customer_id=ids["c2"], kind="regular_visit", due_at=utcnow())
    await session.commit()
    ruleset_id = await activate(session, RULES)
    run = await _apply(session, ruleset_id)
    assert _counts(run)[("regular_visit", "big")] == 1  # c1 only: c2 has its open manual one
    c2_tasks = [row for row in await _tasks(session) if row[0] == "c2"]
    assert c2_tasks == [("c2", "regular_visit", "open", None, None, None)] and manual.source == "manual"
    # The rule held for c2 at this apply: done now, its task is not made again while it holds.
    await service.complete_task(session, EVERY_CUSTOMER, manual.id)
    await session.commit()
    assert _counts(await _apply(session, ruleset_id))[("regular_visit", "big")] == 0

    created = await profiles.create_customer(session, {"code": "c9", "name": "New", "size": "small"})
    await session.commit()
    assert [row for row in await _tasks(session) if row[0] == "c9"] == [
        ("c9", "welcome call", "open", None, ids["queue"], "queued")
    ]
    assert created.team_id == ids["queue"]


async def test_a_ruleset_without_the_kind_re_arms_it(session: AsyncSession) -> None:
    ids = await _world(session)
    await _apply(session, await activate(session, RULES))
    visit = (await session.execute(select(Task).where(Task.kind == "regular_visit", Task.customer_id == ids["c1"]))).scalar_one()
    await service.complete_task(session, EVERY_CUSTOMER, visit.id)
    await session.commit()
    await _apply(session, await activate(session, "big: size = large -> team desk", name="plain"))
    assert (await session.execute(select(TaskTrigger))).all() == []
    run = await _apply(session, await activate(session, RULES, name="again"))
    assert _counts(run)[("regular_visit", "big")] == 1  # c1 again (c2's is still open)


async def test_explain_says_which_rule_would_create_which_task(session: AsyncSession) -> None:
    ids = await _world(session)
    ruleset_id = await activate(session, RULES)
    before = await explain_customer(session, ids["c1"])
    assert "task complaint_follow_up (rule care, due in 1 days): would be created" in before.notes
    assert "Tasks: complaint_follow_up within 1 days (rule care), regular_visit within 7 days (rule big)" in before.explanation.lines
    await _apply(session, ruleset_id)
    visit = (await session.execute(select(Task).where(Task.kind == "regular_visit", Task.customer_id == ids["c1"]))).scalar_one()
    await service.complete_task(session, EVERY_CUSTOMER, visit.id)
    after = await explain_customer(session, ids["c1"])
    assert "task complaint_follow_up (rule care, due in 1 days): not created, one is already open" in after.notes
    assert "task regular_visit (rule big, due in 7 days): not created, the condition already held at the last evaluation" in after.notes


# A longer soak: SEGMENTA_TASK_EXAMPLES=200 pytest tests/domain/test_rule_tasks.py
TASK_EXAMPLES = int(os.environ.get("SEGMENTA_TASK_EXAMPLES", "8"))
STEPS = st.lists(
    st.tuples(st.booleans(), st.sampled_from(["apply", "realtime", "complete", "nothing"])), min_size=1, max_size=6
)


@settings(max_examples=TASK_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=STEPS)
async def test_tasks_follow_the_rule_under_any_mix_of_evaluations(session: AsyncSession, steps: list[tuple[bool, str]]) -> None:
    """Against a plain model: a task is created exactly when an evaluation finds the condition holding, the
    previous evaluation did not, and no task of the kind is open; completing never creates one."""
    for table in (Task.__table__, TaskTrigger.__table__, EvaluationRun.__table__, Customer.__table__):
        await session.execute(table.delete())
    customer = await add_customer(session, "p1", open_complaints=0)
    await session.commit()
    ruleset_id = await activate(session, "care: open_complaints > 0 -> task complaint_follow_up within 1 day",
                                name=f"property {utcnow().timestamp()}")
    held, open_task, created = False, False, 0
    for holds, step in steps:
        await session.execute(update(Customer).where(Customer.id == customer.id).values(open_complaints=int(holds)))
        await session.commit()
        if step == "complete":
            task = (await session.execute(select(Task).where(Task.status == "open"))).scalar_one_or_none()
            assert (task is not None) == open_task
            if task is not None:
                # Completing records an interaction, which re-evaluates the customer in real time.
                await service.complete_task(session, EVERY_CUSTOMER, task.id)
                open_task = False
            else:
                await reevaluate_customer(session, customer.id)
            step = "realtime"
        elif step == "apply":
            await _apply(session, ruleset_id)
        elif step == "realtime":
            await reevaluate_customer(session, customer.id)
        await session.commit()
        if step != "nothing":
            if holds and not held and not open_task:
                created += 1
                open_task = True
            held = holds
        statuses = (await session.execute(select(Task.status))).scalars().all()
        assert (len(statuses), statuses.count("open")) == (created, int(open_task)), (steps, step)
