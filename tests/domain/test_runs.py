"""Evaluation runs, scenario by scenario, with expectations computed by hand (docs/routing.md)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.errors import UserError
from segmenta.domain.routing import runs
from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from segmenta.domain.routing.run_plan import RunProgress
from segmenta.storage import routing_queries
from segmenta.storage.models import AssignmentHistory, Customer, EvaluationChange, EvaluationRun, Segment, Team
from tests.domain.routing_support import (
    add_customer,
    add_employee,
    add_team,
    customer_state,
    dynamic_segments_by_code,
    latest_run,
    rule_tags_by_code,
    run_changes,
    snapshot,
    team_keys_by_code,
)

AS_OF = datetime(2026, 6, 1, 12, 0, 0)


async def activate(session: AsyncSession, source: str, name: str = "main") -> int:
    ruleset = await save_ruleset(session, name, source)
    assert not ruleset.has_errors, ruleset.diagnostics
    await activate_ruleset(session, ruleset.id)
    await session.commit()
    return ruleset.id


async def apply(session: AsyncSession, source: str) -> EvaluationRun:
    run = await runs.apply_ruleset(session, await activate(session, source), as_of=AS_OF)
    assert run.status == "succeeded", run.error
    return run


async def teams(session: AsyncSession, *keys: str, strategy: str = "manual") -> None:
    for key in keys:
        await add_team(session, key, strategy=strategy)


ROUTING = """
segment big = total_spent >= 1000
segment eastern = region = east
vip: big and region = east -> team senior, tag vip
east: eastern -> team east_desk, tag eastern_tag
spend: big -> tag spender, segment spenders
otherwise -> team general
"""


async def test_first_match_decides_the_team_and_segments_and_tags_add_up(session: AsyncSession) -> None:
    await teams(session, "senior", "east_desk", "general")
    await add_customer(session, "a", region="east", total_spent=2000)
    await add_customer(session, "b", region="east", total_spent=10)
    await add_customer(session, "c", region="west", total_spent=5000)
    await add_customer(session, "d")
    await session.commit()
    run = await apply(session, ROUTING)

    assert await team_keys_by_code(session) == {"a": "senior", "b": "east_desk", "c": "general", "d": "general"}
    assert await dynamic_segments_by_code(session) == {
        "a": {"big", "eastern", "spenders"},
        "b": {"eastern"},
        "c": {"big", "spenders"},
    }
    # `east` matched a too: its tag is added although `vip` decided the team.
    assert await rule_tags_by_code(session) == {"a": {"vip", "eastern_tag", "spender"}, "b": {"eastern_tag"}, "c": {"spender"}}
    summary = run.summary
    assert (summary["evaluated"], summary["changed"], summary["unmatched"], summary["locked"]) == (4, 4, 0, 0)
    assert summary["team_counts"] == {"senior": 1, "east_desk": 1, "general": 2}
    assert summary["rule_hits"] == {"vip": 1, "east": 1, "line 7": 2}  # ROUTING starts with a newline
    assert summary["segment_counts"] == {"big": 2, "eastern": 2, "spenders": 2}
    assert summary["tag_counts"] == {"vip": 1, "eastern_tag": 2, "spender": 2}
    kinds = dict((await session.execute(select(Segment.key, Segment.kind))).all())
    assert kinds == {"big": "dynamic", "eastern": "dynamic", "spenders": "dynamic"}

    changes = {change.customer_id: change for change in await run_changes(session, run.id)}
    assert len(changes) == 4
    a = next(c for c in changes.values() if c.deciding_rule == "vip")
    assert sorted(a.segments_added) == ["big", "eastern", "spenders"]
    assert sorted(a.tags_added) == ["eastern_tag", "spender", "vip"]
    assert a.team_before_id is None and a.segments_removed == [] and a.tags_removed == []


async def test_missing_values_and_complements(session: AsyncSession) -> None:
    await teams(session, "older", "not_east", "rest")
    await add_customer(session, "no_region_no_age")
    await add_customer(session, "east_young", region="east", age=20)
    await add_customer(session, "east_old", region="east", age=50)
    await session.commit()
    run = await apply(
        session,
        "old: age > 30 -> team older\nnot_east: region != east -> team not_east\nrest: not (age > 30) -> team rest\n",
    )
    assert await team_keys_by_code(session) == {"no_region_no_age": "not_east", "east_young": "rest", "east_old": "older"}
    assert run.summary["unmatched"] == 0


async def test_ordered_fields_compare_by_declared_order(session: AsyncSession) -> None:
    await teams(session, "accounts", "everyone")
    for size in ("small", "medium", "large", "enterprise", None):
        await add_customer(session, f"c-{size}", size=size)
    await session.commit()
    await apply(session, "big: size >= large -> team accounts\nrest: size between small and medium -> team everyone\n")
    assert await team_keys_by_code(session) == {
        "c-small": "everyone",
        "c-medium": "everyone",
        "c-large": "accounts",
        "c-enterprise": "accounts",
        "c-None": None,
    }


async def test_unmatched_customers_lose_their_team_and_are_counted(session: AsyncSession) -> None:
    await teams(session, "east_desk", "old_team")
    old_team = await session.scalar(select(Team.id).where(Team.key == "old_team"))
    await add_customer(session, "west", region="west", team_id=old_team)
    await add_customer(session, "east", region="east")
    await session.commit()
    run = await apply(session, "east: region = east -> team east_desk\n")
    assert await team_keys_by_code(session) == {"west": None, "east": "east_desk"}
    assert run.summary["unmatched"] == 1
    assert run.summary["moves"] == [
        {"from": None, "to": "east_desk", "count": 1},
        {"from": "old_team", "to": None, "count": 1},
    ]


async def test_day_metrics_are_measured_at_as_of(session: AsyncSession) -> None:
    await teams(session, "lapsed", "recent")
    await add_customer(session, "old", last_purchase_at=AS_OF - timedelta(days=181))
    await add_customer(session, "edge", last_purchase_at=AS_OF - timedelta(days=180))
    await session.commit()
    await apply(session, "lapsed: days_since_purchase > 180 -> team lapsed\notherwise -> team recent\n")
    assert await team_keys_by_code(session) == {"old": "lapsed", "edge": "recent"}


async def test_locked_customers_keep_team_and_manager_but_get_segments(session: AsyncSession) -> None:
    keeper = await add_employee(session, "Keeper")
    newcomer = await add_employee(session, "Newcomer")
    old = await add_team(session, "old_team", members=[keeper])
    new = await add_team(session, "new_team", members=[newcomer])
    locked = await add_customer(
        session, "locked", region="east", team_id=old.id, manager_id=keeper.id, assignment_locked=True
    )
    await add_customer(session, "free", region="east", team_id=old.id, manager_id=keeper.id)
    await session.commit()
    run = await apply(session, "segment eastern = region = east\nr: eastern -> team new_team, tag moved\n")

    state = await customer_state(session)
    assert state["locked"] == (old.id, keeper.id)
    assert state["free"] == (new.id, newcomer.id)
    assert (await dynamic_segments_by_code(session))["locked"] == {"eastern"}
    assert (await rule_tags_by_code(session))["locked"] == {"moved"}
    assert run.summary["locked"] == 1
    assert run.summary["team_counts"] == {"old_team": 1, "new_team": 1}
    change = next(c for c in await run_changes(session, run.id) if c.customer_id == locked.id)
    assert change.locked and change.team_before_id == old.id and change.team_after_id == new.id
    assert change.manager_after_id == keeper.id
    history = (await session.execute(select(AssignmentHistory.customer_id))).scalars().all()
    assert locked.id not in history

    # Second run: the locked customer's would-be move is reported again, but nothing changes.
    again = await runs.apply_ruleset(session, run.ruleset_id, as_of=AS_OF)
    assert again.summary["changed"] == 0
    assert [(c.customer_id, c.locked) for c in await run_changes(session, again.id)] == [(locked.id, True)]


async def test_capacity_exhaustion_leaves_manager_empty_and_reports_it(session: AsyncSession) -> None:
    only = await add_employee(session, "Only", capacity=1)
    await add_team(session, "desk", strategy="least_loaded", members=[only])
    for index in range(3):
        await add_customer(session, f"c{index}")
    await session.commit()
    run = await apply(session, "otherwise -> team desk\n")
    managers = Counter(manager for _, manager in (await customer_state(session)).values())
    assert managers == {only.id: 1, None: 2}
    assert run.summary["unassigned_by_team"] == {"desk": 2}
    assert run.summary["team_counts"] == {"desk": 3}

    # More capacity later: the next apply fills the empty managers, and only those.
    only.capacity = 3
    await session.commit()
    refill = await runs.apply_ruleset(session, run.ruleset_id, as_of=AS_OF)
    assert refill.summary["changed"] == 2 and refill.summary["unassigned_by_team"] == {}
    assert Counter(manager for _, manager in (await customer_state(session)).values()) == {only.id: 3}


async def test_specialists_and_regional_members_are_preferred(session: AsyncSession) -> None:
    generalist = await add_employee(session, "Generalist")
    banker = await add_employee(session, "Banker", specialties=["finance"])
    northerner = await add_employee(session, "Northerner", regions=["north"])
    await add_team(session, "desk", members=[generalist, banker, northerner])
    for index in range(3):
        await add_customer(session, f"fin{index}", industry="finance")
    await add_customer(session, "north", industry="retail", region="north")
    await add_customer(session, "plain", industry="retail", region="south")
    await session.commit()
    await apply(session, "otherwise -> team desk\n")
    state = await customer_state(session)
    assert {state[f"fin{i}"][1] for i in range(3)} == {banker.id}
    assert state["north"][1] == northerner.id
    assert state["plain"][1] in {generalist.id, banker.id, northerner.id}


async def test_round_robin_balances_and_stores_its_position(session: AsyncSession) -> None:
    staff = [await add_employee(session, name) for name in ("Ann", "Bob", "Cid")]
    await add_team(session, "desk", members=staff)
    for index in range(7):
        await add_customer(session, f"c{index}")
    await session.commit()
    await apply(session, "otherwise -> team desk\n")
    managers = Counter(manager for _, manager in (await customer_state(session)).values())
    assert sorted(managers.values()) == [2, 2, 3]
    # 7 turns from position 0 over 3 members: the next turn is member index 1.
    assert await session.scalar(select(Team.round_robin_position).where(Team.key == "desk")) == 1


async def test_least_loaded_counts_customers_managed_elsewhere(session: AsyncSession) -> None:
    busy = await add_employee(session, "Busy")
    free = await add_employee(session, "Free")
    await add_team(session, "elsewhere", strategy="manual", members=[busy])
    elsewhere = await session.scalar(select(Team.id).where(Team.key == "elsewhere"))
    for index in range(3):
        await add_customer(session, f"kept{index}", region="kept", team_id=elsewhere, manager_id=busy.id)
    await add_team(session, "desk", strategy="least_loaded", members=[busy, free])
    for index in range(4):
        await add_customer(session, f"new{index}", region="new")
    await session.commit()
    await apply(session, "kept: region = kept -> team elsewhere\nnew: region = new -> team desk\n")
    state = await customer_state(session)
    # Free takes the first three (loads 0,1,2 < 3); the fourth is a tie at 3 → lower id, Busy.
    assert [state[f"new{i}"][1] for i in range(4)] == [free.id, free.id, free.id, busy.id]


async def test_manual_strategy_assigns_the_team_only(session: AsyncSession) -> None:
    person = await add_employee(session, "Person")
    await add_team(session, "handpicked", strategy="manual", members=[person])
    await add_customer(session, "c")
    await session.commit()
    run = await apply(session, "otherwise -> team handpicked\n")
    handpicked = await session.scalar(select(Team.id).where(Team.key == "handpicked"))
    assert (await customer_state(session))["c"] == (handpicked, None)
    assert run.summary["unassigned_by_team"] == {}


async def test_staying_in_the_team_keeps_the_manager_even_over_capacity(session: AsyncSession) -> None:
    full = await add_employee(session, "Full", capacity=1)
    spare = await add_employee(session, "Spare")
    desk = await add_team(session, "desk", members=[full, spare])
    await add_customer(session, "stays1", team_id=desk.id, manager_id=full.id)
    await add_customer(session, "stays2", team_id=desk.id, manager_id=full.id)
    await session.commit()
    run = await apply(session, "otherwise -> team desk\n")
    assert await customer_state(session) == {"stays1": (desk.id, full.id), "stays2": (desk.id, full.id)}
    assert run.summary["changed"] == 0
    assert await session.scalar(select(func.count()).select_from(AssignmentHistory)) == 0


async def test_moving_records_history_and_releases_the_old_manager(session: AsyncSession) -> None:
    old_manager = await add_employee(session, "Old", capacity=1)
    new_manager = await add_employee(session, "New")
    old = await add_team(session, "old_team", members=[old_manager])
    new = await add_team(session, "new_team", members=[new_manager])
    mover = await add_customer(session, "mover", region="east", team_id=old.id, manager_id=old_manager.id)
    newcomer = await add_customer(session, "newcomer", region="west")
    await session.commit()
    run = await apply(session, "east: region = east -> team new_team\nwest: region = west -> team old_team\n")
    state = await customer_state(session)
    # The mover's departure frees Old's only slot, which the newcomer to old_team takes.
    assert state["newcomer"] == (old.id, old_manager.id)
    assert state["mover"] == (new.id, new_manager.id)
    rows = (await session.execute(select(AssignmentHistory).order_by(AssignmentHistory.customer_id))).scalars().all()
    assert [(h.customer_id, h.team_before_id, h.team_after_id, h.manager_before_id, h.manager_after_id, h.cause, h.run_id, h.rule) for h in rows] == [
        (mover.id, old.id, new.id, old_manager.id, new_manager.id, "run", run.id, "east"),
        (newcomer.id, None, old.id, None, old_manager.id, "run", run.id, "west"),
    ]


async def test_segments_and_rule_tags_follow_the_rules_and_manual_tags_stay(session: AsyncSession) -> None:
    await teams(session, "general")
    await add_customer(session, "c", total_spent=5000, tags=["hand_made"])
    await session.commit()
    await apply(session, "segment big = total_spent >= 1000\nr: big -> tag rich\notherwise -> team general\n")
    assert (await dynamic_segments_by_code(session), await rule_tags_by_code(session)) == ({"c": {"big"}}, {"c": {"rich"}})
    second = await apply(session, "segment small = total_spent < 1000\nr: small -> tag poor\notherwise -> team general\n")
    # `big` is no longer defined by the active ruleset: its members go; the manual tag stays.
    assert (await dynamic_segments_by_code(session), await rule_tags_by_code(session)) == ({}, {})
    change = (await run_changes(session, second.id))[0]
    assert (change.segments_removed, change.tags_removed, change.segments_added) == (["big"], ["rich"], [])
    manual = await session.scalar(select(func.count()).select_from(routing_queries.customer_tags).where(routing_queries.customer_tags.c.source == "manual"))
    assert manual == 1


async def test_applying_twice_changes_nothing_the_second_time(session: AsyncSession) -> None:
    staff = [await add_employee(session, name) for name in ("Ann", "Bob")]
    await add_team(session, "desk", members=staff)
    await teams(session, "general")
    for index in range(6):
        await add_customer(session, f"c{index}", region="east" if index % 2 else "west", total_spent=index * 400)
    await session.commit()
    first = await apply(session, ROUTING.replace("senior", "desk").replace("east_desk", "desk"))
    assert first.summary["changed"] == 6
    before = await snapshot(session)
    second = await runs.apply_ruleset(session, first.ruleset_id, as_of=AS_OF)
    assert second.status == "succeeded" and second.summary["changed"] == 0
    assert await run_changes(session, second.id) == []
    after = await snapshot(session)
    assert after == before


async def test_preview_writes_nothing_but_the_run_and_its_changes(session: AsyncSession) -> None:
    staff = [await add_employee(session, name) for name in ("Ann", "Bob")]
    await add_team(session, "desk", members=staff)
    await teams(session, "general")
    for index in range(5):
        await add_customer(session, f"c{index}", region="east" if index % 2 else "west", total_spent=index * 400)
    await session.commit()
    ruleset_id = (await save_ruleset(session, "draft", ROUTING.replace("senior", "desk").replace("east_desk", "desk"))).id
    await session.commit()
    before = await snapshot(session)
    run = await runs.preview_ruleset(session, ruleset_id, as_of=AS_OF)
    assert run.status == "succeeded" and run.mode == "preview"
    assert await snapshot(session) == before
    assert run.summary["changed"] == 5 and len(await run_changes(session, run.id)) == 5
    # What a preview predicts is what the apply then does.
    by_source = await runs.preview_ruleset(session, source=ROUTING.replace("senior", "desk").replace("east_desk", "desk"), as_of=AS_OF)
    assert by_source.ruleset_id is None and by_source.summary == run.summary


async def test_a_failure_in_the_middle_leaves_everything_as_it_was(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff = [await add_employee(session, name) for name in ("Ann", "Bob")]
    await add_team(session, "desk", members=staff)
    for index in range(4):
        await add_customer(session, f"c{index}", total_spent=index * 1000)
    await session.commit()
    ruleset_id = await activate(session, "segment big = total_spent >= 1000\nr: big -> tag rich\notherwise -> team desk\n")
    before = await snapshot(session)

    async def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk full while writing segment members")

    monkeypatch.setattr(routing_queries, "apply_label_changes", explode)
    run = await runs.apply_ruleset(session, ruleset_id, as_of=AS_OF)
    assert run.status == "failed"
    assert "disk full while writing segment members" in (run.error or "")
    assert run.finished_at is not None
    assert await snapshot(session) == before  # customers, history, segments, tags, positions
    assert await session.scalar(select(func.count()).select_from(EvaluationChange)) == 0
    stored = await session.scalar(select(EvaluationRun).where(EvaluationRun.id == run.id))
    assert stored is not None and stored.status == "failed"

    monkeypatch.undo()
    retried = await runs.apply_ruleset(session, ruleset_id, as_of=AS_OF)
    assert retried.status == "succeeded" and retried.summary["changed"] == 4


async def test_bad_requests_are_user_errors_and_write_nothing(session: AsyncSession) -> None:
    await teams(session, "general")
    draft = await save_ruleset(session, "draft", "otherwise -> team general\n")
    broken = await save_ruleset(session, "broken", "r: size > 5 -> team general\n")
    await session.commit()
    with pytest.raises(UserError) as raised:
        await runs.apply_ruleset(session, draft.id)
    assert raised.value.code == "not_active"
    with pytest.raises(UserError) as raised:
        await runs.preview_ruleset(session, broken.id)
    assert raised.value.code == "has_errors"
    with pytest.raises(UserError):
        await runs.preview_ruleset(session, draft.id, source="otherwise -> team general\n")
    with pytest.raises(UserError):
        await runs.preview_ruleset(session)
    session.add(Segment(key="loyal", name="Loyal", kind="manual"))
    await session.commit()
    with pytest.raises(UserError) as raised:
        await runs.preview_ruleset(session, source="segment loyal = purchase_count > 10\n")
    assert raised.value.code == "manual_segment"
    assert await latest_run(session) is None


async def test_progress_is_reported_and_runs_are_listed(session: AsyncSession) -> None:
    await teams(session, "general")
    for index in range(3):
        await add_customer(session, f"c{index}")
    await session.commit()
    seen: list[RunProgress] = []

    async def record(progress: RunProgress) -> None:
        seen.append(progress)

    run = await runs.preview_ruleset(session, source="otherwise -> team general\n", progress=record)
    steps = [p.step for p in seen]
    assert steps[0] == "evaluate" and steps[-1] == "done" and "write" in steps
    assert all(p.run_id == run.id for p in seen)
    assert run.status == "succeeded"


async def test_an_empty_database_runs_cleanly(session: AsyncSession) -> None:
    await teams(session, "general")
    await session.commit()
    run = await apply(session, "segment any = true\notherwise -> team general, tag t\n")
    assert run.summary["evaluated"] == 0 and run.summary["team_counts"] == {}
    assert run.summary["segment_counts"] == {"any": 0} and run.summary["rule_hits"] == {"line 2": 0}


async def test_concurrent_applies_run_one_after_the_other(session: AsyncSession) -> None:
    import asyncio

    from segmenta.storage.engine import session_factory

    staff = [await add_employee(session, name) for name in ("Ann", "Bob")]
    await add_team(session, "desk", members=staff)
    for index in range(20):
        await add_customer(session, f"c{index}", total_spent=index * 100)
    await session.commit()
    ruleset_id = await activate(session, "segment big = total_spent >= 1000\nr: big -> tag rich\notherwise -> team desk\n")
    factory = session_factory(session.bind)

    async def apply_once() -> EvaluationRun:
        async with factory() as own:
            return await runs.apply_ruleset(own, ruleset_id, as_of=AS_OF)

    results = await asyncio.gather(apply_once(), apply_once())
    assert sorted(run.status for run in results) == ["succeeded", "succeeded"]
    assert sorted(run.summary["changed"] for run in results) == [0, 20]
    managers = Counter(manager for _, manager in (await customer_state(session)).values())
    assert sorted(managers.values()) == [10, 10]


# -- the set-based evaluation (storage/routing_queries.py): settled customers, label counts, codes --


async def test_labels_trading_places_with_equal_counts_are_both_changed(session: AsyncSession) -> None:
    # Gains and losses are derived from counts: one member leaves and another joins,
    # so the number of members is the same before and after — both must still change.
    await teams(session, "general")
    a = await add_customer(session, "a", total_spent=2000)
    b = await add_customer(session, "b", total_spent=10)
    await session.commit()
    first = await apply(session, "segment big = total_spent >= 1000\nr: big -> tag rich\notherwise -> team general\n")
    assert (await dynamic_segments_by_code(session), await rule_tags_by_code(session)) == ({"a": {"big"}}, {"a": {"rich"}})
    a.total_spent, b.total_spent = 10, 2000
    await session.commit()

    again = await runs.apply_ruleset(session, first.ruleset_id, as_of=AS_OF)
    assert (await dynamic_segments_by_code(session), await rule_tags_by_code(session)) == ({"b": {"big"}}, {"b": {"rich"}})
    assert again.summary["changed"] == 2
    assert (again.summary["segment_counts"], again.summary["tag_counts"]) == ({"big": 1}, {"rich": 1})
    changes = {c.customer_id: c for c in await run_changes(session, again.id)}
    assert (changes[a.id].segments_removed, changes[a.id].tags_removed) == (["big"], ["rich"])
    assert (changes[b.id].segments_added, changes[b.id].tags_added) == (["big"], ["rich"])
    assert changes[a.id].team_before_id == changes[a.id].team_after_id  # labels only: the team stays
    assert await session.scalar(select(func.count()).select_from(AssignmentHistory)) == 2  # the first apply's


async def test_a_renamed_rule_is_stored_as_the_deciding_rule_without_a_change_or_history(session: AsyncSession) -> None:
    await teams(session, "east_desk")
    await add_customer(session, "c", region="east")
    await session.commit()
    await apply(session, "east: region = east -> team east_desk\n")
    renamed = await apply(session, "eastern: region = east -> team east_desk\n")
    assert renamed.summary["changed"] == 0 and renamed.summary["rule_hits"] == {"eastern": 1}
    assert await run_changes(session, renamed.id) == []
    assert await session.scalar(select(Customer.deciding_rule)) == "eastern"
    assert await session.scalar(select(func.count()).select_from(AssignmentHistory)) == 1


async def test_a_re_apply_reports_the_same_counts_as_the_apply_before_it(session: AsyncSession) -> None:
    # The second run's figures come from the census of settled customers, the first's
    # from the subjects: they must agree.
    only = await add_employee(session, "Only", capacity=1)
    await add_team(session, "senior", members=[await add_employee(session, "Sue")])
    await add_team(session, "east_desk", strategy="least_loaded", members=[only])
    await teams(session, "general")
    general = await session.scalar(select(Team.id).where(Team.key == "general"))
    for index in range(8):
        await add_customer(session, f"c{index}", region="east" if index % 2 else "west", total_spent=index * 300)
    await add_customer(session, "locked", region="east", total_spent=5000, team_id=general, assignment_locked=True)
    await session.commit()
    first = await apply(session, ROUTING)
    second = await runs.apply_ruleset(session, first.ruleset_id, as_of=AS_OF)
    figures = ("evaluated", "unmatched", "locked", "team_counts", "rule_hits", "segment_counts", "tag_counts", "unassigned_by_team")
    assert {key: second.summary[key] for key in figures} == {key: first.summary[key] for key in figures}
    assert first.summary["unassigned_by_team"] == {"east_desk": 1}  # c1 and c3 (not big) for one place
    # Only the customer without a manager (and the locked one's would-be move) are looked at again.
    assert second.summary["changed"] == 0 and second.summary["moves"] == []
    assert len(await run_changes(session, second.id)) == 1


async def test_many_labels_spill_into_further_code_columns(session: AsyncSession, monkeypatch: pytest.MonkeyPatch) -> None:
    from segmenta.dsl import sql_compiler

    # 1 unsettled bit + 2 decision bits leave one label in the first 4-bit code column.
    monkeypatch.setattr(sql_compiler, "CODE_BITS", 4)
    await teams(session, "big", "small")
    await add_customer(session, "rich", total_spent=5000, region="east")
    await add_customer(session, "poor", total_spent=5, region="west")
    await session.commit()
    source = (
        "segment spender = total_spent >= 100\n"
        "big: spender -> team big, tag t1, tag t2, segment s1\n"
        "east: region = east -> tag t3, tag t4, segment s2\n"
        "otherwise -> team small, tag t5, segment s3\n"
    )
    first = await apply(session, source)
    assert await dynamic_segments_by_code(session) == {"rich": {"spender", "s1", "s2"}, "poor": {"s3"}}
    assert await rule_tags_by_code(session) == {"rich": {"t1", "t2", "t3", "t4"}, "poor": {"t5"}}
    assert await team_keys_by_code(session) == {"rich": "big", "poor": "small"}
    again = await runs.apply_ruleset(session, first.ruleset_id, as_of=AS_OF)
    assert again.summary["changed"] == 0
    assert again.summary["tag_counts"] == {"t1": 1, "t2": 1, "t3": 1, "t4": 1, "t5": 1}


async def test_an_apply_that_rewrites_many_customers_refreshes_the_planner_statistics(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL keeps yesterday's statistics until someone analyses: an apply that changed
    at least a tenth of the customers does it (after its commit); one that changed little
    leaves it to autovacuum; a failing refresh does not fail the run."""
    await teams(session, "senior", "east_desk", "general")
    for index in range(20):
        await add_customer(session, f"c{index}", region="east" if index % 2 else "west", total_spent=index * 100)
    await session.commit()
    refreshes: list[int] = []
    real_refresh = routing_queries.refresh_statistics

    async def counted(inner: AsyncSession) -> None:
        refreshes.append(1)
        await real_refresh(inner)

    monkeypatch.setattr(routing_queries, "refresh_statistics", counted)
    first = await apply(session, ROUTING)
    assert first.summary["changed"] == 20 and refreshes == [1]
    if session.bind.dialect.name == "postgresql":
        rows_known = await session.scalar(text("SELECT reltuples FROM pg_class WHERE oid = 'customers'::regclass"))
        assert rows_known == 20  # -1 until a table is first analysed

    await session.execute(update(Customer).where(Customer.code == "c0").values(region="east"))
    await session.commit()
    second = await runs.apply_ruleset(session, first.ruleset_id, as_of=AS_OF)
    assert second.summary["changed"] == 1 and refreshes == [1]  # 1 of 20: below a tenth

    async def failing(_inner: AsyncSession) -> None:
        raise RuntimeError("statistics unavailable")

    monkeypatch.setattr(routing_queries, "refresh_statistics", failing)
    await session.execute(update(Customer).values(region="west"))
    await session.commit()
    third = await runs.apply_ruleset(session, first.ruleset_id, as_of=AS_OF)
    assert third.summary["changed"] == 11 and len(refreshes) == 1  # the ten easterners and c0
    stored = await session.get(EvaluationRun, third.id, populate_existing=True)
    assert stored is not None and stored.status == "succeeded"
