"""domain.access.scope: the one definition of an agent's customer scope, over rows and over in-memory values."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.access.scope import EVERY_CUSTOMER, Scope, change_is_visible, ensure_may_act_on, scope_of
from segmenta.domain.errors import UserError
from segmenta.storage.models import Customer
from tests.domain.routing_support import add_customer, add_employee, add_team


async def _scene(session: AsyncSession) -> tuple[int, int, int, int]:
    """Agent Ann is in team `mine`; Bob is in `other`.  Returns (ann, bob, mine, other)."""
    ann = await add_employee(session, "Ann")
    bob = await add_employee(session, "Bob")
    mine = await add_team(session, "mine", members=[ann])
    other = await add_team(session, "other", members=[bob])
    await add_customer(session, "team", team_id=mine.id, manager_id=bob.id)
    await add_customer(session, "managed", team_id=other.id, manager_id=ann.id)
    await add_customer(session, "managed_no_team", manager_id=ann.id)
    await add_customer(session, "theirs", team_id=other.id, manager_id=bob.id)
    await add_customer(session, "nobodys")
    await session.flush()
    return ann.id, bob.id, mine.id, other.id


def test_only_agents_are_restricted() -> None:
    for role in ("admin", "manager", "viewer"):
        assert scope_of(role, 7) == EVERY_CUSTOMER
        assert EVERY_CUSTOMER.customers() is None and EVERY_CUSTOMER.customer_ids() is None
    assert scope_of("agent", 7) == Scope(restricted=True, employee_id=7)
    # Nobody authenticated, or an agent bound to no employee, is restricted to nothing.
    assert scope_of(None, None).restricted and scope_of("agent", None).restricted


async def test_an_agent_sees_managed_and_team_customers(session: AsyncSession) -> None:
    ann, bob, _, _ = await _scene(session)
    predicate = scope_of("agent", ann).customers()
    assert predicate is not None
    seen = set(await session.scalars(select(Customer.code).where(predicate)))
    assert seen == {"team", "managed", "managed_no_team"}
    bobs = scope_of("agent", bob).customers()
    assert bobs is not None
    assert set(await session.scalars(select(Customer.code).where(bobs))) == {"team", "managed", "theirs"}
    nothing = scope_of("agent", None).customers()
    assert nothing is not None
    assert list(await session.scalars(select(Customer.code).where(nothing))) == []


async def test_a_change_is_visible_when_the_customer_was_or_becomes_the_agents(session: AsyncSession) -> None:
    ann, bob, mine, other = await _scene(session)
    scope = scope_of("agent", ann)
    # (team before, manager before, team after, manager after)
    assert await change_is_visible(session, scope, None, None, mine, bob)  # joins Ann's team
    assert await change_is_visible(session, scope, mine, bob, other, bob)  # leaves it
    assert await change_is_visible(session, scope, other, bob, other, ann)  # Ann becomes the manager
    assert not await change_is_visible(session, scope, None, None, other, bob)
    assert not await change_is_visible(session, scope, None, None, None, None)
    assert await change_is_visible(session, EVERY_CUSTOMER, None, None, None, None)


async def test_acting_on_a_customer_out_of_scope_is_refused_like_a_missing_one(session: AsyncSession) -> None:
    ann, _, _, _ = await _scene(session)
    ids = dict((row.code, row.id) for row in (await session.execute(select(Customer.code, Customer.id))).all())
    scope = scope_of("agent", ann)
    await ensure_may_act_on(session, scope, ids["team"])
    await ensure_may_act_on(session, scope, ids["managed"])
    for customer_id in (ids["theirs"], ids["nobodys"], 999_999):
        with pytest.raises(UserError) as refused:
            await ensure_may_act_on(session, scope, customer_id)
        assert (refused.value.code, refused.value.field) == ("forbidden", "customer_id")
    await ensure_may_act_on(session, EVERY_CUSTOMER, ids["theirs"])
