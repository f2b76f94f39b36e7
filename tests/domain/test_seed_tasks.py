"""The demo's tasks: hand-made ones of every kind in every state (some overdue) from the seed, and rule-made
ones from the sample rules' apply."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from segmenta.domain.routing.runs import apply_ruleset
from segmenta.domain.seed import sample_rules, seed_database
from segmenta.domain.seed_tasks import KINDS
from segmenta.storage.models import Task

AS_OF = datetime(2026, 11, 20)


async def test_the_demo_has_tasks_of_every_kind_some_overdue_from_people_and_rules(session: AsyncSession) -> None:
    summary = await seed_database(session, customers=600, seed=3, as_of=AS_OF)
    await session.commit()
    seeded = (await session.execute(select(Task.kind, Task.status, Task.source, Task.due_at))).all()
    assert summary.tasks == len(seeded) == 30
    assert {kind for kind, *_ in seeded} == set(KINDS)
    assert Counter(status for _, status, *_ in seeded).keys() == {"open", "done", "cancelled"}
    assert {source for _, _, source, _ in seeded} == {"manual", "system"}
    assert any(status == "open" and due < AS_OF for _, status, _, due in seeded)  # overdue
    ruleset = await save_ruleset(session, "sample", sample_rules())
    await activate_ruleset(session, ruleset.id)
    await session.commit()
    run = await apply_ruleset(session, ruleset.id)
    assert run.status == "succeeded", run.error
    made = dict((await session.execute(
        select(Task.kind, func.count()).where(Task.source == "rule").group_by(Task.kind)
    )).all())
    assert {item["kind"] for item in run.summary["tasks"]} == {"birthday_greeting", "complaint_follow_up", "regular_visit", "win_back"}
    assert sum(made.values()) == sum(item["count"] for item in run.summary["tasks"]) > 0
