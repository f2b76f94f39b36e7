"""Real-time routing: every kind of customer write re-evaluates that customer in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from segmenta.domain.customers import activity, profiles, records
from segmenta.domain.routing import assignment, realtime_decide, realtime_reads, realtime_rules, runs
from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from segmenta.storage import routing_writes
from segmenta.storage.engine import session_factory
from segmenta.storage.models import (
    AssignmentHistory,
    Customer,
    Employee,
    EvaluationChange,
    EvaluationRun,
    Team,
    TeamMember,
)
from segmenta.storage.new_customer_read import NewCustomerRead
from tests.domain.routing_support import (
    add_customer,
    add_employee,
    add_team,
    dynamic_segments_by_code,
    rule_tags_by_code,
)
from tests.domain.test_realtime_create import outcome, world
from tests.domain.test_routing_property import INDUSTRIES, REGIONS, SIZES, rule_files

RULES = """
segment high_value = total_spent >= 1000
segment complaining = open_complaints > 0
vip: high_value and size >= large -> team senior, tag vip
care: complaining -> team care, tag needs_call
contacted: interaction_count >= 2 -> tag engaged
small: size = small -> team standard
rest: true -> team general
"""


async def activate(session: AsyncSession, source: str = RULES) -> int:
    ruleset = await save_ruleset(session, "realtime", source)
    assert not ruleset.has_errors, ruleset.diagnostics
    await activate_ruleset(session, ruleset.id)
    await session.commit()
    return ruleset.id


async def staff(session: AsyncSession) -> dict[str, Any]:
    ann = await add_employee(session, "Ann")
    bob = await add_employee(session, "Bob")
    cat = await add_employee(session, "Cat", capacity=0)
    teams = {
        "senior": await add_team(session, "senior", members=[ann, bob]),
        "care": await add_team(session, "care", strategy="least_loaded", members=[bob]),
        "standard": await add_team(session, "standard", members=[cat]),
        "general": await add_team(session, "general", strategy="manual", members=[ann]),
    }
    await session.commit()
    return {"ann": ann.id, "bob": bob.id, "cat": cat.id, **{key: team.id for key, team in teams.items()}}


async def state(session: AsyncSession, customer_id: int) -> tuple[str | None, int | None, str | None]:
    row = (
        await session.execute(
            select(Team.key, Customer.manager_id, Customer.deciding_rule)
            .select_from(Customer)
            .outerjoin(Team, Team.id == Customer.team_id)
            .where(Customer.id == customer_id)
        )
    ).one()
    return row[0], row[1], row[2]


async def history(session: AsyncSession, customer_id: int) -> list[AssignmentHistory]:
    statement = select(AssignmentHistory).where(AssignmentHistory.customer_id == customer_id).order_by(AssignmentHistory.id)
    return list((await session.scalars(statement)).all())


async def test_without_an_active_ruleset_nothing_is_routed(session: AsyncSession) -> None:
    await staff(session)
    ruleset = await save_ruleset(session, "draft only", RULES)
    await session.commit()
    customer = await profiles.create_customer(session, {"code": "c1", "name": "C1", "size": "small"})
    await activity.record_purchase(session, customer_id=customer.id, amount=5000)
    await session.commit()
    assert await state(session, customer.id) == (None, None, None)
    assert await session.scalar(select(func.count()).select_from(EvaluationRun)) == 0
    assert await session.scalar(select(func.count()).select_from(AssignmentHistory)) == 0
    assert ruleset.status == "draft"


async def test_create_routes_assigns_and_records_history_and_a_realtime_run(session: AsyncSession) -> None:
    ids = await staff(session)
    ruleset_id = await activate(session)
    customer = await profiles.create_customer(session, {"code": "c1", "name": "C1", "size": "large"})
    # The returned object already shows the assignment (the API payload reads it).
    assert customer.team_id == ids["general"] and customer.manager_id is None
    await session.commit()
    assert await state(session, customer.id) == ("general", None, "rest")
    [entry] = await history(session, customer.id)
    assert (entry.cause, entry.rule, entry.team_before_id, entry.team_after_id) == ("realtime", "rest", None, ids["general"])
    run = await session.get(EvaluationRun, entry.run_id)
    assert run is not None and (run.mode, run.status, run.ruleset_id) == ("realtime", "succeeded", ruleset_id)
    [change] = (await session.scalars(select(EvaluationChange).where(EvaluationChange.run_id == run.id))).all()
    assert (change.customer_id, change.team_after_id, change.deciding_rule) == (customer.id, ids["general"], "rest")


async def test_purchase_moves_the_customer_and_updates_segments_and_tags(session: AsyncSession) -> None:
    ids = await staff(session)
    await activate(session)
    customer = await profiles.create_customer(session, {"code": "c1", "name": "C1", "size": "large"})
    await activity.record_purchase(session, customer_id=customer.id, amount=400)
    assert await state(session, customer.id) == ("general", None, "rest")
    await activity.record_purchase(session, customer_id=customer.id, amount=600)
    await session.commit()
    team, manager, rule = await state(session, customer.id)
    assert (team, rule) == ("senior", "vip") and manager in (ids["ann"], ids["bob"])
    assert (await dynamic_segments_by_code(session))["c1"] == {"high_value"}
    assert (await rule_tags_by_code(session))["c1"] == {"vip"}
    assert [h.team_after_id for h in await history(session, customer.id)] == [ids["general"], ids["senior"]]
    # Both events of the day hang under one realtime run.
    runs_today = (await session.scalars(select(EvaluationRun).where(EvaluationRun.mode == "realtime"))).all()
    assert len(runs_today) == 1
    changes = (await session.scalars(select(EvaluationChange).order_by(EvaluationChange.id))).all()
    assert [c.segments_added for c in changes] == [[], ["high_value"]]
    assert changes[1].tags_added == ["vip"]


async def test_update_interaction_and_feedback_each_reevaluate(session: AsyncSession) -> None:
    ids = await staff(session)
    await activate(session)
    customer = await profiles.create_customer(session, {"code": "c1", "name": "C1", "size": "medium"})
    assert await state(session, customer.id) == ("general", None, "rest")

    await profiles.update_customer(session, customer.id, {"size": "small"})
    # standard's only member has no capacity: team set, manager left empty.
    assert await state(session, customer.id) == ("standard", None, "small")

    await activity.record_interaction(session, customer_id=customer.id, kind="call")
    assert "c1" not in await rule_tags_by_code(session)
    await activity.record_interaction(session, customer_id=customer.id, kind="visit")
    assert (await rule_tags_by_code(session))["c1"] == {"engaged"}

    complaint = await activity.submit_feedback(session, customer_id=customer.id, kind="complaint", comment="late")
    assert await state(session, customer.id) == ("care", ids["bob"], "care")
    assert (await rule_tags_by_code(session))["c1"] == {"engaged", "needs_call"}
    assert (await dynamic_segments_by_code(session))["c1"] == {"complaining"}

    await activity.update_feedback_status(session, complaint.id, "resolved")
    assert await state(session, customer.id) == ("standard", None, "small")
    assert (await rule_tags_by_code(session))["c1"] == {"engaged"}
    assert "c1" not in await dynamic_segments_by_code(session)
    await session.commit()
    causes = {h.cause for h in await history(session, customer.id)}
    assert causes == {"realtime"} and len(await history(session, customer.id)) == 4


async def test_staying_in_the_team_keeps_the_manager(session: AsyncSession) -> None:
    ids = await staff(session)
    await activate(session)
    customer = await profiles.create_customer(
        session, {"code": "c1", "name": "C1", "size": "large"}
    )
    await activity.record_purchase(session, customer_id=customer.id, amount=2000)
    _, first_manager, _ = await state(session, customer.id)
    for amount in (10, 20, 30):
        await activity.record_purchase(session, customer_id=customer.id, amount=amount)
        await profiles.update_customer(session, customer.id, {"city": f"city {amount}"})
    assert await state(session, customer.id) == ("senior", first_manager, "vip")
    assert len(await history(session, customer.id)) == 2
    assert ids["senior"]


async def test_locked_customers_keep_team_and_manager_but_segments_and_tags_follow(session: AsyncSession) -> None:
    ids = await staff(session)
    await activate(session)
    customer = await profiles.create_customer(session, {"code": "c1", "name": "C1", "size": "large"})
    customer.assignment_locked = True
    await session.flush()
    await activity.record_purchase(session, customer_id=customer.id, amount=5000)
    await session.commit()
    assert await state(session, customer.id) == ("general", None, "rest")
    assert (await dynamic_segments_by_code(session))["c1"] == {"high_value"}
    assert (await rule_tags_by_code(session))["c1"] == {"vip"}
    assert len(await history(session, customer.id)) == 1  # only the creation
    change = (await session.scalars(select(EvaluationChange).order_by(EvaluationChange.id.desc()).limit(1))).one()
    # As in apply runs, a locked customer's change names the team the rules would have chosen.
    assert (change.locked, change.team_before_id, change.team_after_id) == (True, ids["general"], ids["senior"])
    assert change.manager_after_id is None


async def test_no_team_rule_matching_clears_the_team_like_apply(session: AsyncSession) -> None:
    await staff(session)
    await activate(session, "small: size = small -> team standard\nbig: size >= large -> team senior\n")
    customer = await profiles.create_customer(session, {"code": "c1", "name": "C1", "size": "large"})
    assert (await state(session, customer.id))[0] == "senior"
    await profiles.update_customer(session, customer.id, {"size": "medium"})
    assert await state(session, customer.id) == (None, None, None)


async def test_realtime_leaves_nothing_for_apply_to_change(session: AsyncSession) -> None:
    await staff(session)
    ruleset_id = await activate(session)
    created = []
    for index, size in enumerate(["small", "medium", "large", "enterprise", "large"]):
        customer = await profiles.create_customer(session, {"code": f"c{index}", "name": f"C{index}", "size": size})
        created.append(customer.id)
    await activity.record_purchase(session, customer_id=created[2], amount=3000)
    await activity.submit_feedback(session, customer_id=created[3], kind="complaint")
    for _ in range(2):
        await activity.record_interaction(session, customer_id=created[4], kind="email")
    await session.commit()
    run = await runs.apply_ruleset(session, ruleset_id)
    assert run.status == "succeeded", run.error
    assert run.summary["changed"] == 0, run.summary


async def test_a_failed_write_rolls_back_the_routing_too(session: AsyncSession) -> None:
    await staff(session)
    await activate(session)
    customer_id = (await profiles.create_customer(session, {"code": "c1", "name": "C1", "size": "large"})).id
    await session.commit()
    await activity.record_purchase(session, customer_id=customer_id, amount=5000)
    assert (await state(session, customer_id))[0] == "senior"
    await session.rollback()
    assert await state(session, customer_id) == ("general", None, "rest")
    assert len(await history(session, customer_id)) == 1


async def test_the_ruleset_is_compiled_once_per_version(session: AsyncSession, monkeypatch: pytest.MonkeyPatch) -> None:
    await staff(session)
    await activate(session)
    realtime_rules._cache.clear()
    calls: list[str] = []
    original = realtime_rules.compile_rules

    def counting(source: str) -> Any:
        calls.append(source)
        return original(source)

    monkeypatch.setattr(realtime_rules, "compile_rules", counting)
    for index in range(4):
        await profiles.create_customer(session, {"code": f"c{index}", "name": "C", "size": "small"})
    assert len(calls) == 1
    await session.commit()
    # A new version is a new compilation.
    await activate(session, RULES + "# v2\n")
    await profiles.create_customer(session, {"code": "c9", "name": "C", "size": "small"})
    assert len(calls) == 2


async def test_a_team_deleted_after_activation_keeps_the_assignment(session: AsyncSession) -> None:
    ids = await staff(session)
    await activate(session)
    customer = await profiles.create_customer(session, {"code": "c1", "name": "C1", "size": "large"})
    await session.commit()
    await session.execute(TeamMember.__table__.delete().where(TeamMember.team_id == ids["senior"]))
    await session.execute(Team.__table__.delete().where(Team.id == ids["senior"]))
    await activity.record_purchase(session, customer_id=customer.id, amount=5000)
    assert await state(session, customer.id) == ("general", None, "rest")
    assert (await dynamic_segments_by_code(session))["c1"] == {"high_value"}


async def test_capacity_counts_the_customer_leaving_its_old_manager(session: AsyncSession) -> None:
    dana = await add_employee(session, "Dana", capacity=1)
    one = await add_team(session, "one", members=[dana])
    two = await add_team(session, "two", members=[dana])
    await session.commit()
    await activate(session, "a: region = a -> team one\nb: region = b -> team two\n")
    customer = await profiles.create_customer(session, {"code": "c1", "name": "C1", "region": "a"})
    assert (customer.team_id, customer.manager_id) == (one.id, dana.id)
    # Dana is full, but the customer she has is the one moving: she takes it along.
    await profiles.update_customer(session, customer.id, {"region": "b"})
    assert (customer.team_id, customer.manager_id) == (two.id, dana.id)


async def _read_team_as_the_assignment_module_does(
    session: AsyncSession, team_key: str | None, segment_keys: Any, *, with_loads: bool, existing: Any = None
) -> NewCustomerRead:
    """The reference for realtime_reads.read_team: the segments and teams by key, then the team's
    assigner as domain.routing.assignment.load_team_assigners builds it (every member's stored load)."""
    teams, segments = await realtime_reads.teams_and_segments_by_key(session, [team_key] if team_key else [], segment_keys)
    read = NewCustomerRead(segments=segments)
    if team_key in teams:
        team_id, strategy = teams[team_key]
        assigner = (await assignment.load_team_assigners(session, [team_id]))[team_id]
        read.team = (team_id, strategy, assigner.position)
        read.members = [(team_id, m.employee_id, m.capacity, m.specialties, m.regions) for m in assigner.members]
        read.loads = {m.employee_id: m.load for m in assigner.members}
    return read


async def _assigners_with_the_loads_read(
    session: AsyncSession, read: NewCustomerRead, row_locks: bool
) -> dict[int, assignment.TeamAssigner]:
    return assignment.build_assigners([read.team], read.members, read.loads)


async def _lock_team_assigners_in_the_assignment_module(
    session: AsyncSession, needing: Any
) -> dict[int, assignment.TeamAssigner]:
    return await assignment.load_team_assigners(session, sorted({d.rule_team for d in needing}))


PURCHASED_AT = datetime(2026, 1, 2, 3, 4, 5)
people = st.lists(
    st.fixed_dictionaries(
        {
            "team": st.none() | st.sampled_from(["t0", "t1", "t2", "t3"]),
            "manager": st.none() | st.sampled_from(["Ann", "Bob", "Dee"]),
            "locked": st.booleans(),
            "region": st.none() | st.sampled_from(REGIONS),
            "industry": st.none() | st.sampled_from(INDUSTRIES),
        }
    ),
    min_size=1,
    max_size=3,
)
events = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.one_of(
            st.fixed_dictionaries(
                {
                    "region": st.none() | st.sampled_from(REGIONS),
                    "size": st.none() | st.sampled_from(SIZES),
                    "industry": st.none() | st.sampled_from(INDUSTRIES),
                    "tags": st.lists(st.sampled_from(["a", "b"]), unique=True),
                }
            ),
            st.sampled_from([10.0, 600.0]).map(lambda amount: {"purchase": amount}),
        ),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    source=rule_files(),
    people=people,
    events=events,
    loads=st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 1)),
    drop_t3=st.booleans(),
)
async def test_one_customer_routes_exactly_as_with_the_general_reads_and_writes(
    engine: AsyncEngine,
    source: str,
    people: list[dict[str, Any]],
    events: list[tuple[int, dict[str, Any]]],
    loads: tuple[int, int, int],
    drop_t3: bool,
) -> None:
    """One customer's team and segments are read in one statement, with the team's members
    when it needs a manager (storage/new_customer_read.py; locked on PostgreSQL, which then
    counts their loads, with them on SQLite); on PostgreSQL its writes are one statement.
    Every event must route exactly as with the team read, locked and loaded by
    domain.routing.assignment and the writes made one statement each."""
    await world(engine, source, loads, drop_t3)
    factory = session_factory(engine)
    async with factory() as session:
        employees = dict((await session.execute(select(Employee.name, Employee.id))).all())
        teams = dict((await session.execute(select(Team.key, Team.id))).all())
        for index, person in enumerate(people):
            await add_customer(
                session,
                f"p{index}",
                region=person["region"],
                industry=person["industry"],
                team_id=teams.get(person["team"]) if person["team"] else None,
                manager_id=employees[person["manager"]] if person["manager"] else None,
                assignment_locked=person["locked"],
            )
        await session.commit()
        ids = [(await records.get_customer_by_code(session, f"p{index}")).id for index in range(len(people))]

    async def event(session: AsyncSession, customer_id: int, change: dict[str, Any]) -> None:
        if "purchase" in change:
            await activity.record_purchase(
                session, customer_id=customer_id, amount=change["purchase"], purchased_at=PURCHASED_AT
            )
        else:
            await profiles.update_customer(session, customer_id, change)

    for which, change in events:
        customer_id = ids[which % len(ids)]
        async with factory() as session:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(realtime_decide, "read_team", _read_team_as_the_assignment_module_does)
                patch.setattr(realtime_decide, "_lock_team_assigners", _lock_team_assigners_in_the_assignment_module)
                patch.setattr(routing_writes, "_in_one_statement", lambda session, writes: False)
                patch.setattr(routing_writes, "_through_view", lambda session: False)
                patch.setattr(realtime_decide, "_assigners_read", _assigners_with_the_loads_read)
                await event(session, customer_id, change)
            code = (await session.get(Customer, customer_id)).code
            expected = await outcome(session, code)
            await session.rollback()
        async with factory() as session:
            await event(session, customer_id, change)
            assert await outcome(session, code) == expected, (source, people, change)
            # Kept, so that the next event meets the loads, labels and positions this one left.
            await session.commit()
