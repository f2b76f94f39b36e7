"""Explaining one customer: rule traces plus the manager, capacity and lock notes only the database knows."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.errors import UserError
from segmenta.domain.routing.explanations import RulesHaveErrors, explain_customer
from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from tests.domain.routing_support import add_customer, add_employee, add_team

RULES = """segment big = total_spent >= 1000
vip: big and region = east -> team senior, tag vip
east: region = east -> team east_desk
rest: true -> team general
"""


async def world(session: AsyncSession) -> dict[str, int]:
    ann = await add_employee(session, "Ann", capacity=1)
    bob = await add_employee(session, "Bob")
    senior = await add_team(session, "senior", members=[ann])
    east = await add_team(session, "east_desk", strategy="least_loaded", members=[bob])
    general = await add_team(session, "general", strategy="manual")
    await session.flush()
    return {"ann": ann.id, "bob": bob.id, "senior": senior.id, "east_desk": east.id, "general": general.id}


async def activate(session: AsyncSession, source: str = RULES) -> int:
    ruleset = await save_ruleset(session, "main", source)
    await activate_ruleset(session, ruleset.id)
    await session.flush()
    return ruleset.id


async def test_a_move_names_the_deciding_rule_failed_comparisons_and_the_predicted_manager(session: AsyncSession) -> None:
    ids = await world(session)
    await activate(session)
    customer = await add_customer(session, "c1", region="east", total_spent=200.0, team_id=ids["general"])
    result = await explain_customer(session, customer.id)
    assert result.deciding_rule == "east"
    assert (result.team.key if result.team else None, result.manager.name if result.manager else None) == ("east_desk", "Bob")
    assert result.segments == () and result.tags == ()
    [segment, vip, east, rest] = result.rules
    assert (vip.label, vip.line, vip.matched) == ("vip", 2, False)
    assert "total_spent >= 1000 ✗ (total_spent is 200.00)" in vip.detail  # money: to the cent
    assert east.matched and "decides team east_desk" in east.detail
    assert result.notes == ["Now: team general, manager none", "moves to team east_desk: manager Bob (least loaded)"]
    text = result.text.splitlines()
    assert text[0] == "Team: east_desk (decided by east)"
    assert "moves to team east_desk: manager Bob (least loaded)" in text
    assert result.manager is not None and result.manager.name == "Bob"


async def test_full_team_and_manual_team_leave_the_manager_empty(session: AsyncSession) -> None:
    ids = await world(session)
    await activate(session)
    await add_customer(session, "holder", manager_id=ids["ann"], team_id=ids["senior"])
    rich = await add_customer(session, "rich", region="east", total_spent=5000.0)
    west = await add_customer(session, "west", region="west")
    full = await explain_customer(session, rich.id)
    assert full.team is not None and full.team.key == "senior" and full.manager is None
    assert "moves to team senior: team senior has no member with free capacity: manager left empty" in full.notes
    assert full.tags == ("vip",) and full.segments == ("big",)
    manual = await explain_customer(session, west.id)
    assert manual.deciding_rule == "rest" and manual.manager is None
    assert "the team assigns managers by hand (manual strategy): manager left empty" in manual.notes[-1]


async def test_staying_keeps_the_manager_and_a_lock_keeps_everything(session: AsyncSession) -> None:
    ids = await world(session)
    await activate(session)
    staying = await add_customer(session, "stay", region="east", team_id=ids["east_desk"], manager_id=ids["bob"])
    locked = await add_customer(
        session, "locked", region="east", team_id=ids["general"], manager_id=ids["ann"], assignment_locked=True
    )
    stay = await explain_customer(session, staying.id)
    assert stay.notes[-1] == "stays in team east_desk: keeps manager Bob"
    kept = await explain_customer(session, locked.id)
    assert kept.notes == [
        "Now: team general, manager Ann, assignment locked",
        "assignment locked: keeps team general and manager Ann; rules would choose east_desk",
    ]
    assert (kept.team and kept.team.key, kept.manager and kept.manager.name, kept.deciding_rule) == ("general", "Ann", "east")


async def test_source_and_saved_rulesets_and_errors(session: AsyncSession) -> None:
    ids = await world(session)
    customer = await add_customer(session, "c1", region="north", team_id=ids["senior"], manager_id=ids["ann"])
    with pytest.raises(UserError) as no_active:
        await explain_customer(session, customer.id)
    assert no_active.value.code == "no_active_ruleset"
    from_source = await explain_customer(session, customer.id, source="n: region = north -> team general\n")
    assert from_source.deciding_rule == "n" and from_source.ruleset_id is None
    assert from_source.notes[-1].startswith("moves to team general")
    unmatched = await explain_customer(session, customer.id, source="s: region = south -> team general\n")
    assert unmatched.team is None and unmatched.notes[-1] == "no team rule matches: leaves team senior and manager Ann"
    assert unmatched.text.splitlines()[0] == "Team: none (no team rule matched)"
    saved = await save_ruleset(session, "draft", RULES)
    assert (await explain_customer(session, customer.id, ruleset_id=saved.id)).deciding_rule == "rest"
    with pytest.raises(RulesHaveErrors) as broken:
        await explain_customer(session, customer.id, source="x: size > 5 -> team general\nrgion = east -> tag t\n")
    assert broken.value.field == "source" and broken.value.code == "has_errors"
    assert {d.code for d in broken.value.diagnostics} >= {"type-mismatch", "unknown-field"}
    with pytest.raises(UserError) as missing:
        await explain_customer(session, 999_999, source="rest: true -> team general\n")
    assert missing.value.code == "not_found"
