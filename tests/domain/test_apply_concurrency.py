"""An apply while purchases and edits keep arriving (docs/routing.md, "Applies and real-time writes").

Writers in sessions of their own record purchases and move customers between regions —
each one re-routed in real time, flipping segment memberships, rule tags and teams —
while an apply of the same active ruleset runs over a few thousand customers.  The
apply must succeed, no write may fail except with Busy, and afterwards every purchase
is stored once and every customer's team, dynamic segments and rule tags are what the
Python evaluator gives on its final data.  (Before: on PostgreSQL the apply failed with
a UniqueViolation on uq_customer_tags; on SQLite writes waited for the whole apply.)
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from segmenta.domain.customers.activity import record_purchase
from segmenta.domain.customers.metrics import load_rule_values
from segmenta.domain.customers.profiles import update_customer
from segmenta.domain.errors import Busy
from segmenta.domain.routing import runs
from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from segmenta.dsl import compile_rules
from segmenta.storage.engine import begin_writer, create_engine, session_factory
from segmenta.storage.models import Customer, EvaluationRun, Purchase, utcnow
from tests.domain.routing_support import (
    add_employee,
    add_team,
    dynamic_segments_by_code,
    rule_tags_by_code,
    team_keys_by_code,
)

CUSTOMERS = 3000
WRITERS = 6
REGIONS = ("east", "west", "north")
# Thresholds the purchases cross (amounts 50–400 on 0–900 spent), regions the edits flip.
RULES = """
segment big = total_spent >= 600
segment eastern = region = east
vip: big and eastern -> team senior, tag vip, segment vips
spend: big -> team desk, tag spender
east: eastern -> team east_desk, tag eastern_tag
otherwise -> team general, tag small
"""


async def _world(engine: AsyncEngine) -> int:
    """Staff, teams and customers nobody has routed yet, with the ruleset active (real-time routing on)."""
    async with session_factory(engine)() as session:
        staff = [await add_employee(session, name) for name in ("Ann", "Bob", "Cid", "Dee")]
        await add_team(session, "senior", members=staff[:2])
        await add_team(session, "desk", strategy="least_loaded", members=staff[1:3])
        await add_team(session, "east_desk", members=staff[2:])
        await add_team(session, "general", strategy="manual")
        rng = random.Random(7)
        now = utcnow()
        await session.execute(
            insert(Customer),
            [
                {
                    "code": f"c{index}",
                    "name": f"c{index}",
                    "region": rng.choice(REGIONS),
                    "total_spent": float(rng.randrange(0, 900, 50)),
                    "created_at": now,
                    "updated_at": now,
                }
                for index in range(CUSTOMERS)
            ],
        )
        ruleset = await save_ruleset(session, "live", RULES)
        assert not ruleset.has_errors, ruleset.diagnostics
        await activate_ruleset(session, ruleset.id)
        await session.commit()
        return ruleset.id


async def _writer(
    engine: AsyncEngine, seed: int, ids: list[int], stop: asyncio.Event, purchases: Counter[int], busy: list[Busy]
) -> None:
    """Purchases and region edits, one transaction each (as a mutation runs them), until `stop`."""
    rng = random.Random(seed)
    async with session_factory(engine)() as session:
        while not stop.is_set():
            customer_id = rng.choice(ids)
            try:
                await begin_writer(session)
                if rng.random() < 0.7:
                    await record_purchase(session, customer_id=customer_id, amount=float(rng.randrange(50, 400, 50)))
                    await session.commit()
                    purchases[customer_id] += 1
                else:
                    await update_customer(session, customer_id, {"region": rng.choice(REGIONS)})
                    await session.commit()
            except Busy as error:  # the one failure allowed: retryable, nothing written
                await session.rollback()
                busy.append(error)
            await asyncio.sleep(0)


async def _verdicts_hold(session: AsyncSession) -> None:
    """Every customer's team, dynamic segments and rule tags are the evaluator's on its final data."""
    evaluator = compile_rules(RULES)
    rows = (await session.execute(select(Customer.id, Customer.code))).all()
    now = utcnow()
    values = await load_rule_values(session, [row.id for row in rows], as_of=now)
    teams = await team_keys_by_code(session)
    segments = await dynamic_segments_by_code(session)
    tags = await rule_tags_by_code(session)
    wrong = []
    for row in rows:
        outcome = evaluator.evaluate(values[row.id], now)
        found = (teams.get(row.code), segments.get(row.code, set()), tags.get(row.code, set()))
        if found != (outcome.team, set(outcome.segments), set(outcome.tags)):
            wrong.append((row.code, found, outcome))
    assert not wrong, f"{len(wrong)} customers differ from the evaluator, e.g. {wrong[:3]}"


async def test_an_apply_and_real_time_writes_during_it_lose_nothing(engine: AsyncEngine) -> None:
    ruleset_id = await _world(engine)
    async with session_factory(engine)() as session:
        ids = list((await session.scalars(select(Customer.id))).all())
    purchases: Counter[int] = Counter()
    busy: list[Busy] = []
    stop = asyncio.Event()
    writers = [asyncio.create_task(_writer(engine, seed, ids, stop, purchases, busy)) for seed in range(WRITERS)]
    try:
        await asyncio.sleep(0.2)  # writers are going before the apply starts
        async with session_factory(engine)() as session:
            run = await runs.apply_ruleset(session, ruleset_id)
        await asyncio.sleep(0.1)
    finally:
        stop.set()
        outcomes = await asyncio.gather(*writers, return_exceptions=True)
    assert [o for o in outcomes if isinstance(o, BaseException)] == []
    assert run.status == "succeeded", run.error
    assert sum(purchases.values()) > 0

    async with session_factory(engine)() as session:
        stored = Counter(
            dict((await session.execute(select(Purchase.customer_id, func.count()).group_by(Purchase.customer_id))).all())
        )
        assert stored == purchases  # every recorded purchase once, none that failed
        counts = dict((await session.execute(select(Customer.id, Customer.purchase_count))).all())
        assert {cid: n for cid, n in counts.items() if n} == dict(purchases)
        await _verdicts_hold(session)
        # A second apply now finds nothing to do: what real time and the apply wrote agree.
        again = await runs.apply_ruleset(session, ruleset_id)
        assert again.status == "succeeded" and again.summary["changed"] == 0, again.summary
    # Writers waited for the apply's short write transaction.  A refused write (BUSY) wrote
    # nothing — the counts above hold — and refusals stay the exception.
    assert len(busy) * 20 <= sum(purchases.values()), busy


async def test_an_apply_leaves_alone_a_customer_re_routed_after_its_snapshot(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A purchase committed between the apply's evaluation and its writes: the real-time verdict stands."""
    ruleset_id = await _world(engine)
    async with session_factory(engine)() as session:
        target = await session.scalar(
            select(Customer.id).where(Customer.total_spent == 0, Customer.region == "west").order_by(Customer.id).limit(1)
        )
    assert target is not None
    evaluated = runs._evaluate

    async def purchase_after_the_snapshot(*args: Any, **kwargs: Any) -> Any:
        result = await evaluated(*args, **kwargs)
        async with session_factory(engine)() as writer:
            await begin_writer(writer)
            await record_purchase(writer, customer_id=target, amount=1000.0)  # now big: desk, spender
            await writer.commit()
        return result

    monkeypatch.setattr(runs, "_evaluate", purchase_after_the_snapshot)
    async with session_factory(engine)() as session:
        run = await runs.apply_ruleset(session, ruleset_id)
        assert run.status == "succeeded", run.error
        assert run.summary["superseded"] == 1
        await _verdicts_hold(session)
        code = await session.scalar(select(Customer.code).where(Customer.id == target))
        assert (await team_keys_by_code(session))[code] == "desk"
        assert (await rule_tags_by_code(session))[code] == {"spender"}


async def test_a_starved_sqlite_write_is_busy_and_writes_nothing(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock")
    async with session_factory(engine)() as session:
        await add_team(session, "general", strategy="manual")
        session.add(Customer(code="c0", name="c0"))
        await session.commit()
        customer_id = await session.scalar(select(Customer.id))
    monkeypatch.setenv("SEGMENTA_SQLITE_BUSY_TIMEOUT", "0.2")
    impatient = create_engine(engine.url.render_as_string(hide_password=False))
    try:
        async with session_factory(engine)() as holder, session_factory(impatient)() as starved:
            await begin_writer(holder)
            await holder.execute(text("UPDATE teams SET name = name"))  # holds the write lock
            with pytest.raises(Busy) as raised:
                await begin_writer(starved)
                await record_purchase(starved, customer_id=customer_id, amount=5.0)
            await starved.rollback()
            await holder.commit()
        assert raised.value.retry_after is not None and raised.value.retry_after > 0
        async with session_factory(engine)() as check:
            assert await check.scalar(select(func.count()).select_from(Purchase)) == 0
            assert await check.scalar(select(Customer.purchase_count).where(Customer.id == customer_id)) == 0
    finally:
        await impatient.dispose()


async def test_an_apply_that_loses_on_a_lock_fails_as_busy_and_writes_nothing(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's own failure message says Busy, not an internal database error."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock")
    ruleset_id = await _world(engine)
    monkeypatch.setenv("SEGMENTA_SQLITE_BUSY_TIMEOUT", "0.2")
    impatient = create_engine(engine.url.render_as_string(hide_password=False))
    try:
        async with session_factory(engine)() as holder, session_factory(impatient)() as session:
            plan = await runs.plan_run(session, "apply", ruleset_id=ruleset_id)
            started = await runs.start_run(session, plan)
            await begin_writer(holder)
            await holder.execute(text("UPDATE teams SET name = name"))  # held until the apply's writes gave up
            execute = runs._execute

            async def then_release(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await execute(*args, **kwargs)
                finally:
                    await holder.commit()

            monkeypatch.setattr(runs, "_execute", then_release)
            run = await runs.execute_run(session, plan, started.id)
            assert run.status == "failed"
            assert (run.error or "").startswith("Busy: "), run.error
            assert await session.scalar(select(func.count()).select_from(Customer).where(Customer.team_id.is_not(None))) == 0
            stored = await session.get(EvaluationRun, run.id)
            assert stored is not None and stored.status == "failed"
    finally:
        await impatient.dispose()
