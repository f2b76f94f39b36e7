"""Ruleset lifecycle: versions, diagnostics against the database, one active at a time."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from segmenta.domain.errors import NotFound, UserError
from segmenta.domain.routing.rulesets import activate_ruleset, active_ruleset, get_ruleset, list_rulesets, save_ruleset
from segmenta.storage.engine import session_factory
from segmenta.storage.models import RulesetVersion
from tests.domain.routing_support import add_customer, add_team

GOOD = "east: region = east -> team east_desk\notherwise -> team general\n"


async def test_versions_count_up_per_name(session: AsyncSession) -> None:
    await add_team(session, "east_desk")
    await add_team(session, "general")
    first = await save_ruleset(session, "main", GOOD)
    second = await save_ruleset(session, "main", GOOD + "# edited\n")
    other = await save_ruleset(session, "experiment", GOOD)
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert first.status == second.status == "draft"
    assert [r.id for r in await list_rulesets(session, name="main")] == [second.id, first.id]


async def test_saving_checks_against_the_database(session: AsyncSession) -> None:
    await add_team(session, "general")
    await add_customer(session, "c1", region="east")
    saved = await save_ruleset(session, "main", "r: region = eats -> team east_desk\notherwise -> team general\n")
    codes = {(d["code"], d["severity"]) for d in saved.diagnostics}
    assert ("unknown-team", "error") in codes
    assert ("unknown-value", "warning") in codes
    assert saved.has_errors
    unknown_team = next(d for d in saved.diagnostics if d["code"] == "unknown-team")
    assert unknown_team["line"] == 1  # located (the exact span is the checker's business)


async def test_a_ruleset_with_errors_is_saved_but_never_activated(session: AsyncSession) -> None:
    broken = await save_ruleset(session, "main", "r: size > 5 -> team nowhere\n")
    assert broken.has_errors and broken.status == "draft"
    with pytest.raises(UserError) as raised:
        await activate_ruleset(session, broken.id)
    assert raised.value.code == "has_errors"
    assert "line 1" in raised.value.message
    assert await active_ruleset(session) is None


async def test_activation_archives_the_previous_and_keeps_one_active(session: AsyncSession) -> None:
    await add_team(session, "east_desk")
    await add_team(session, "general")
    first = await save_ruleset(session, "main", GOOD)
    second = await save_ruleset(session, "main", GOOD + "# v2\n")
    await activate_ruleset(session, first.id)
    assert (await active_ruleset(session)).id == first.id
    await activate_ruleset(session, second.id)
    await session.commit()
    statuses = dict((await session.execute(select(RulesetVersion.id, RulesetVersion.status))).all())
    assert statuses == {first.id: "archived", second.id: "active"}
    refreshed = await get_ruleset(session, first.id)
    assert refreshed.archived_at is not None and second.activated_at is not None
    # Re-activating the archived one swaps them back.
    await activate_ruleset(session, first.id)
    await session.commit()
    active = await session.scalar(select(func.count()).where(RulesetVersion.status == "active"))
    assert active == 1 and (await active_ruleset(session)).id == first.id


async def test_activation_rechecks_teams_that_have_gone(session: AsyncSession) -> None:
    team = await add_team(session, "east_desk")
    await add_team(session, "general")
    saved = await save_ruleset(session, "main", GOOD)
    assert not saved.has_errors
    await session.delete(team)
    await session.flush()
    with pytest.raises(UserError):
        await activate_ruleset(session, saved.id)


async def test_concurrent_activations_leave_exactly_one_active(engine: AsyncEngine) -> None:
    import asyncio

    factory = session_factory(engine)
    async with factory() as session:
        await add_team(session, "east_desk")
        await add_team(session, "general")
        ids = [(await save_ruleset(session, f"r{i}", GOOD)).id for i in range(4)]
        await session.commit()

    async def activate(ruleset_id: int) -> None:
        async with factory() as session:
            await activate_ruleset(session, ruleset_id)
            await session.commit()

    await asyncio.gather(*(activate(ruleset_id) for ruleset_id in ids))
    async with factory() as session:
        active = await session.scalar(select(func.count()).where(RulesetVersion.status == "active"))
    assert active == 1


async def test_bad_names_and_unknown_ids_are_user_errors(session: AsyncSession) -> None:
    with pytest.raises(UserError) as raised:
        await save_ruleset(session, "   ", GOOD)
    assert raised.value.field == "name"
    with pytest.raises(NotFound):
        await get_ruleset(session, 999)
    with pytest.raises(UserError):
        await list_rulesets(session, status="deleted")
    assert await session.scalar(select(func.count()).select_from(RulesetVersion)) == 0
