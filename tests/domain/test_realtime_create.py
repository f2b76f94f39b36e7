"""Creating a customer decides its routing before the INSERT (domain/routing/realtime_create.py).

The reference is the general path: insert the customer as it is, then re-evaluate it
(domain.routing.realtime.reevaluate_customer).  Both must leave exactly the same rows.  The
ruleset a process used last is only a guess checked by the first statement: a wrong
or missing guess, a ruleset activated by another session, or a guess from another
database with the same ruleset id and version must all route by the active ruleset.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from segmenta.domain.customers import profiles
from segmenta.domain.customers.records import MANUAL, birthday_md, validate_customer_input
from segmenta.domain.errors import Conflict
from segmenta.domain.events import hub
from segmenta.domain.routing import realtime, realtime_create, realtime_rules
from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from segmenta.storage.engine import session_factory
from segmenta.storage.models import (
    AssignmentHistory,
    Base,
    Customer,
    CustomerAttribute,
    CustomerTag,
    EvaluationChange,
    EvaluationRun,
    RulesetVersion,
    Segment,
    SegmentMember,
    Team,
    TeamMember,
)
from tests.domain.routing_support import add_customer, add_employee, add_team
from tests.domain.test_routing_property import INDUSTRIES, REGIONS, SIZES, rule_files

_customers = Customer.__table__


async def create_then_reevaluate(session: AsyncSession, data: dict[str, Any]) -> Customer:
    """The reference: what create_customer did before deciding first — insert, then re-evaluate."""
    values = validate_customer_input(data, creating=True)
    tags: list[str] = values.pop("tags", [])
    attributes: dict[str, Any] = values.pop("attributes", {})
    customer = Customer(**values, birthday_md=birthday_md(values.get("birthday")))
    session.add(customer)
    await session.flush()
    session.add_all(CustomerTag(customer_id=customer.id, tag=tag, source=MANUAL) for tag in tags)
    session.add_all(
        CustomerAttribute(customer_id=customer.id, key=key, text_value=value, number_value=None)
        for key, value in attributes.items()
        if value is not None
    )
    await session.flush()
    await realtime.reevaluate_customer(session, customer.id)
    return customer


async def outcome(session: AsyncSession, code: str) -> dict[str, Any]:
    """Everything a creation writes, without generated ids and timestamps."""
    row = (await session.execute(select(_customers).where(_customers.c.code == code))).one()._mapping
    customer_id = row["id"]
    ignored = {"id", "created_at", "updated_at"}

    async def rows(statement: Any) -> list[tuple[Any, ...]]:
        return sorted((tuple(r) for r in (await session.execute(statement)).all()), key=repr)

    run = EvaluationRun.__table__
    return {
        "customer": {key: value for key, value in row.items() if key not in ignored},
        "tags": await rows(select(CustomerTag.tag, CustomerTag.source).where(CustomerTag.customer_id == customer_id)),
        "attributes": await rows(
            select(CustomerAttribute.key, CustomerAttribute.text_value).where(CustomerAttribute.customer_id == customer_id)
        ),
        "memberships": await rows(
            select(Segment.key, Segment.kind)
            .join(SegmentMember, SegmentMember.segment_id == Segment.id)
            .where(SegmentMember.customer_id == customer_id)
        ),
        "segments": await rows(select(Segment.key, Segment.name, Segment.kind, Segment.description)),
        "changes": await rows(
            select(
                *[c for c in EvaluationChange.__table__.c if c.name not in ("id", "run_id", "customer_id")],
                run.c.mode,
                run.c.ruleset_id,
                run.c.as_of,
            )
            .join(run, run.c.id == EvaluationChange.run_id)
            .where(EvaluationChange.customer_id == customer_id)
        ),
        "history": await rows(
            select(
                *[c for c in AssignmentHistory.__table__.c if c.name not in ("id", "run_id", "customer_id", "changed_at")],
                run.c.mode,
                run.c.ruleset_id,
            )
            .outerjoin(run, run.c.id == AssignmentHistory.run_id)
            .where(AssignmentHistory.customer_id == customer_id)
        ),
        "teams": await rows(select(Team.id, Team.round_robin_position)),
        "realtime runs": await session.scalar(select(func.count()).select_from(run).where(run.c.mode == "realtime")),
    }


new_customers = st.fixed_dictionaries(
    {
        "name": st.just("New"),
        "region": st.none() | st.sampled_from(REGIONS),
        "size": st.none() | st.sampled_from(SIZES),
        "industry": st.none() | st.sampled_from(INDUSTRIES),
        "age": st.none() | st.sampled_from([17, 18, 40, 64.5]),
        "tags": st.lists(st.sampled_from(["a", "b"]), unique=True),
        "attributes": st.sampled_from([{}, {"tier": "gold"}, {"tier": "silver"}, {"tier": None}]),
    }
)


async def world(engine: AsyncEngine, source: str, loads: tuple[int, int, int], drop_t3: bool) -> int:
    """Teams t0 (round robin from position 1), t1 (least loaded), t2 (manual), t3 (no members);
    Ann, Bob (capacity 2) and Dee (capacity 1) with `loads` customers each, Cid inactive; `source` active."""
    async with session_factory(engine)() as session:
        for table in reversed(Base.metadata.sorted_tables):
            await session.execute(table.delete())
        ann = await add_employee(session, "Ann", regions=["east"])
        bob = await add_employee(session, "Bob", capacity=2, specialties=["finance"])
        cid = await add_employee(session, "Cid", active=False)
        dee = await add_employee(session, "Dee", capacity=1, regions=["west"], specialties=["retail"])
        await add_team(session, "t0", members=[ann, bob, dee], position=1)
        await add_team(session, "t1", strategy="least_loaded", members=[bob, cid, dee, ann])
        await add_team(session, "t2", strategy="manual", members=[ann])
        t3 = await add_team(session, "t3")
        for employee, load in zip((ann, bob, dee), loads, strict=True):
            for index in range(load):
                await add_customer(session, f"{employee.name}{index}", manager_id=employee.id)
        session.add(Segment(key="s_b", name="S B", kind="manual"))
        ruleset = await save_ruleset(session, "property", source)
        assert not ruleset.has_errors, (source, ruleset.diagnostics)
        await activate_ruleset(session, ruleset.id)
        if drop_t3:
            # A team deleted after activation: the customer keeps no team (logged), labels still follow.
            await session.execute(TeamMember.__table__.delete().where(TeamMember.team_id == t3.id))
            await session.execute(Team.__table__.delete().where(Team.id == t3.id))
        await session.commit()
        return ruleset.id


def set_guess(kind: str, ruleset_id: int, source: str) -> None:
    if kind == "none":
        realtime_rules._last_used = None
    elif kind == "other ruleset":
        realtime_rules._last_used = realtime_rules.compiled_rules(ruleset_id + 1000, 1, "otherwise -> team t2, tag other\n")
    elif kind == "same id, other source":  # another database whose ruleset has this id and version
        realtime_rules._last_used = realtime_rules.compiled_rules(ruleset_id, 1, "otherwise -> team t0, tag elsewhere\n")
    else:
        realtime_rules._last_used = realtime_rules.compiled_rules(ruleset_id, 1, source)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    source=rule_files(),
    people=st.lists(new_customers, min_size=1, max_size=4),
    guesses=st.lists(st.sampled_from(["right", "none", "other ruleset", "same id, other source"]), min_size=4, max_size=4),
    loads=st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 1)),
    drop_t3=st.booleans(),
)
async def test_create_writes_what_insert_then_reevaluate_writes(
    engine: AsyncEngine,
    source: str,
    people: list[dict[str, Any]],
    guesses: list[str],
    loads: tuple[int, int, int],
    drop_t3: bool,
) -> None:
    ruleset_id = await world(engine, source, loads, drop_t3)
    factory = session_factory(engine)
    for index, (person, guess) in enumerate(zip(people, guesses, strict=False)):
        data = {**person, "code": f"n{index}"}
        async with factory() as session:
            reference = await create_then_reevaluate(session, data)
            expected = await outcome(session, data["code"])
            await session.rollback()
        async with factory() as session:
            set_guess(guess, ruleset_id, source)
            created = await profiles.create_customer(session, data)
            # The returned object shows what was written (the API payload reads it).
            assert (created.team_id, created.manager_id, created.deciding_rule) == (
                expected["customer"]["team_id"],
                expected["customer"]["manager_id"],
                expected["customer"]["deciding_rule"],
            )
            assert await outcome(session, data["code"]) == expected, (source, data, guess)
            # Kept, so that the next customer meets the loads and positions this one left.
            await session.commit()
        assert reference.code == data["code"]


async def test_activation_by_another_session_routes_the_next_customer_by_the_new_ruleset(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        await add_team(session, "one")
        await add_team(session, "two")
        first = await save_ruleset(session, "rules", "otherwise -> team one, tag first\n")
        await activate_ruleset(session, first.id)
        await session.commit()
    factory = session_factory(engine)
    async with factory() as ours, factory() as theirs:
        before = await profiles.create_customer(ours, {"code": "c1", "name": "C1"})
        await ours.commit()
        # Another session (another server process, as far as the database knows) activates a new version.
        second = await save_ruleset(theirs, "rules", "otherwise -> team two, tag second\n")
        await activate_ruleset(theirs, second.id)
        await theirs.commit()
        after = await profiles.create_customer(ours, {"code": "c2", "name": "C2"})
        await ours.commit()
        teams = dict((await ours.execute(select(Team.id, Team.key))).all())
        tags = dict((await ours.execute(select(CustomerTag.customer_id, CustomerTag.tag))).all())
        runs = dict((await ours.execute(select(AssignmentHistory.customer_id, EvaluationRun.ruleset_id).join(
            EvaluationRun, EvaluationRun.id == AssignmentHistory.run_id))).all())
    assert (teams[before.team_id], tags[before.id], runs[before.id]) == ("one", "first", first.id)
    assert (teams[after.team_id], tags[after.id], runs[after.id]) == ("two", "second", second.id)
    assert realtime_rules.last_used_rules() is not None and realtime_rules.last_used_rules().ruleset_id == second.id


async def test_deactivation_by_another_session_stops_routing(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        await add_team(session, "one")
        ruleset = await save_ruleset(session, "rules", "otherwise -> team one\n")
        await activate_ruleset(session, ruleset.id)
        await session.commit()
    factory = session_factory(engine)
    async with factory() as ours, factory() as theirs:
        routed = await profiles.create_customer(ours, {"code": "c1", "name": "C1"})
        await ours.commit()
        await theirs.execute(update(RulesetVersion).where(RulesetVersion.status == "active").values(status="archived"))
        await theirs.commit()
        unrouted = await profiles.create_customer(ours, {"code": "c2", "name": "C2"})
        await ours.commit()
        history = (await ours.scalars(select(AssignmentHistory.customer_id))).all()
    assert routed.team_id is not None and unrouted.team_id is None
    assert history == [routed.id]


@pytest.mark.parametrize("capacity", [None, 10])
async def test_a_routed_create_takes_a_fixed_small_number_of_statements(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, capacity: int | None
) -> None:
    async with session_factory(engine)() as session:
        ann = await add_employee(session, "Ann", capacity=capacity)
        await add_team(session, "one", members=[ann])
        ruleset = await save_ruleset(session, "rules", "segment adult = age >= 18\notherwise -> team one, tag t\n")
        await activate_ruleset(session, ruleset.id)
        await session.commit()
        await profiles.create_customer(session, {"code": "warm", "name": "Warm", "age": 30})  # the day's run, the segment
        await session.commit()
        statements: list[str] = []
        tables: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            words = statement.split(None, 3)
            statements.append(words[0].upper())
            if words[0].upper() == "INSERT":
                tables.append(words[2])

        event.listen(engine.sync_engine, "before_cursor_execute", record)
        try:
            created = await profiles.create_customer(session, {"code": "c1", "name": "C1", "age": 40, "tags": ["m"]})
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", record)
        await session.commit()
    assert created.team_id is not None and created.manager_id == ann.id
    if engine.dialect.name == "postgresql":
        # The read (locks included), then every write in one statement, the manager's pick included.
        assert statements == ["WITH", "WITH"], statements
    else:
        # The read and the customer's INSERT … RETURNING, then one INSERT into the routing view
        # (storage/sqlite_writes.py) whose trigger writes tags (manual and rule), membership,
        # change and history.  Round robin over one member: the position stays.  The transaction's
        # BEGIN IMMEDIATE is no statement of its own: it rides with the first (storage/sqlite_cursor.py).
        assert statements == ["WITH", "INSERT", "INSERT"], statements
        assert tables == ["customers", "segmenta_routing_writes"]


async def test_round_robin_position_is_stored_with_the_creation(session: AsyncSession) -> None:
    ann = await add_employee(session, "Ann")
    bob = await add_employee(session, "Bob")
    team = await add_team(session, "one", members=[ann, bob])
    ruleset = await save_ruleset(session, "rules", "otherwise -> team one\n")
    await activate_ruleset(session, ruleset.id)
    await session.commit()
    managers = [(await profiles.create_customer(session, {"code": f"c{n}", "name": "C"})).manager_id for n in range(3)]
    await session.commit()
    assert managers == [ann.id, bob.id, ann.id]
    assert await session.scalar(select(Team.round_robin_position).where(Team.id == team.id)) == 1


async def test_the_history_row_is_announced_after_the_commit_only(session: AsyncSession) -> None:
    team_id = (await add_team(session, "one")).id
    ruleset = await save_ruleset(session, "rules", "otherwise -> team one\n")
    await activate_ruleset(session, ruleset.id)
    await session.commit()
    with hub.assignments.subscribe() as events:
        rolled_back = await profiles.create_customer(session, {"code": "c1", "name": "C1"})
        assert rolled_back.team_id == team_id
        await session.rollback()
        created = await profiles.create_customer(session, {"code": "c2", "name": "C2"})
        assert events.pending() == 0
        await session.commit()
        assert events.pending() == 1
        announced = await events.get()
    assert (announced.customer_id, announced.team_after_id, announced.cause) == (created.id, team_id, "realtime")


def racing_read(read: Any) -> Any:
    """The first read, as if the code was taken by a concurrent writer right after it."""

    async def racing(*args: Any, **kwargs: Any) -> Any:
        result = await read(*args, **kwargs)
        result.code_taken = False
        return result

    return racing


async def test_a_duplicate_code_lost_to_a_race_is_a_conflict_and_routes_nothing(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_team(session, "one")
    ruleset = await save_ruleset(session, "rules", "otherwise -> team one\n")
    await activate_ruleset(session, ruleset.id)
    await profiles.create_customer(session, {"code": "RACE", "name": "First"})
    await session.commit()
    # The code check of the first read said "free": a concurrent writer took it since.
    monkeypatch.setattr(realtime_create, "_read", racing_read(realtime_create._read))
    with pytest.raises(Conflict) as raised:
        await profiles.create_customer(session, {"code": "RACE", "name": "Second"})
    assert raised.value.field == "code"
    await session.rollback()
    assert (await session.scalars(select(Customer.code))).all() == ["RACE"]
    assert await session.scalar(select(func.count()).select_from(AssignmentHistory)) == 1


async def test_a_team_deleted_after_activation_is_logged_and_leaves_the_new_customer_unassigned(
    session: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    gone = await add_team(session, "gone")
    ruleset = await save_ruleset(session, "rules", "segment adult = age >= 18\notherwise -> team gone, tag t\n")
    await activate_ruleset(session, ruleset.id)
    await session.execute(Team.__table__.delete().where(Team.id == gone.id))
    await session.commit()
    with caplog.at_level(logging.WARNING, logger="segmenta.domain.routing.realtime_create"):
        created = await profiles.create_customer(session, {"code": "c1", "name": "C1", "age": 30})
    assert (created.team_id, created.manager_id, created.deciding_rule) == (None, None, None)
    assert "'gone'" in caplog.text
    tags = (await session.scalars(select(CustomerTag.tag).where(CustomerTag.source == "rule"))).all()
    assert tags == ["t"]
    assert await session.scalar(select(func.count()).select_from(AssignmentHistory)) == 0
