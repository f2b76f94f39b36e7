"""A realtime run's summary, derived from the day's change rows (domain/routing/realtime_summary.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.customers import activity, profiles
from segmenta.domain.routing.manual_assignment import assign_manager
from segmenta.domain.routing.realtime_summary import realtime_summaries
from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from segmenta.storage.models import EvaluationChange, EvaluationRun
from tests.domain.routing_support import add_employee, add_team

# No catch-all rule: a large customer without purchases matches no team rule.
RULES = """
segment high_value = total_spent >= 1000
vip: high_value and size >= large -> team senior, tag vip
small: size = small -> team standard
mid: size = medium -> team general
"""


async def test_the_summary_counts_the_days_changes_by_hand(session: AsyncSession) -> None:
    ann = await add_employee(session, "Ann")
    cat = await add_employee(session, "Cat", capacity=0)
    await add_team(session, "senior", members=[ann])
    await add_team(session, "standard", members=[cat])  # nobody has room
    await add_team(session, "general", strategy="manual", members=[ann])
    ruleset = await save_ruleset(session, "day", RULES)
    await activate_ruleset(session, ruleset.id)
    await session.commit()

    c1 = await profiles.create_customer(session, {"code": "c1", "name": "C1", "size": "small"})  # 1: small, → standard, no manager
    c2 = await profiles.create_customer(session, {"code": "c2", "name": "C2", "size": "large"})  # nothing matches: no row
    await activity.record_purchase(session, customer_id=c2.id, amount=5000)  # 2: vip, → senior (Ann)
    await profiles.update_customer(session, c2.id, {"size": "medium"})  # 3: mid, senior → general (manual team)
    c3 = await profiles.create_customer(session, {"code": "c3", "name": "C3", "size": "medium"})  # 4: mid, → general
    await profiles.update_customer(session, c3.id, {"size": "large"})  # 5: no rule, general → none
    c4 = await profiles.create_customer(session, {"code": "c4", "name": "C4", "size": "small"})  # 6: small, → standard, no manager
    await assign_manager(session, [c4.id], ann.id, lock=True)  # manual: into senior, locked (no realtime row)
    await activity.record_purchase(session, customer_id=c4.id, amount=5000)  # 7: locked, small (would be standard), +high_value
    await profiles.update_customer(session, c1.id, {"name": "C1 renamed"})  # nothing changes: no row
    await session.commit()

    run_ids = list((await session.scalars(select(EvaluationRun.id).where(EvaluationRun.mode == "realtime"))).all())
    assert len(run_ids) == 1
    (run_id,) = run_ids
    rows = (await session.scalars(select(EvaluationChange).where(EvaluationChange.run_id == run_id))).all()
    assert len(rows) == 7  # the numbered events above

    summary = (await realtime_summaries(session, [run_id]))[run_id]
    assert summary == {
        "evaluated": 4,  # c1..c4 changed at least once
        "changed": 4,
        "unmatched": 1,  # event 5
        "locked": 1,  # c4
        "team_counts": {},
        "rule_hits": {"mid": 2, "small": 3, "vip": 1},  # events 3, 4; 1, 6, 7; 2
        "segment_counts": {},
        "tag_counts": {},
        "unassigned_by_team": {"standard": 2},  # events 1 and 6 (general is manual; 7 is locked)
        "moves": [
            {"from": None, "to": "standard", "count": 2},
            {"from": None, "to": "general", "count": 1},
            {"from": None, "to": "senior", "count": 1},
            {"from": "general", "to": None, "count": 1},
            {"from": "senior", "to": "general", "count": 1},
        ],
    }


async def test_a_run_without_changes_has_an_empty_summary_and_no_runs_no_query(session: AsyncSession) -> None:
    run = EvaluationRun(mode="realtime", status="succeeded", as_of=datetime(2026, 1, 1), summary={})
    session.add(run)
    await session.flush()
    summary = (await realtime_summaries(session, [run.id]))[run.id]
    assert (summary["evaluated"], summary["changed"], summary["moves"], summary["rule_hits"]) == (0, 0, [], {})
    assert await realtime_summaries(session, []) == {}
