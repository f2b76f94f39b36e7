"""The scheduled apply: settings, the lease across processes, and an iteration that records a run."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from segmenta.domain.routing.scheduler import (
    DEFAULT_INTERVAL,
    JOB,
    Scheduler,
    ScheduleSettingError,
    parse_interval,
    scheduler_from_environment,
    try_acquire,
)
from segmenta.storage.engine import session_factory
from segmenta.storage.models import Customer, EvaluationRun, SchedulerLock
from tests.domain.routing_support import add_customer, add_team

START = datetime(2026, 3, 1, 8, 0, 0)
HOUR = 3600.0


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, DEFAULT_INTERVAL), ("", DEFAULT_INTERVAL), ("3600", 3600.0), ("90s", 90.0), ("30m", 1800.0),
     ("24h", 86400.0), ("7d", 604800.0), ("1.5h", 5400.0), (" 2H ", 7200.0), ("off", None), ("0", None)],
)
def test_interval_setting(value: str | None, seconds: float | None) -> None:
    assert parse_interval(value) == seconds


@pytest.mark.parametrize("value", ["soon", "24 hours", "-5", "5w", "h"])
def test_a_bad_interval_is_a_clear_error(value: str) -> None:
    with pytest.raises(ScheduleSettingError, match="SEGMENTA_SCHEDULE_INTERVAL"):
        parse_interval(value)


def test_off_gives_no_scheduler(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    assert scheduler_from_environment(sessions, {"SEGMENTA_SCHEDULE_INTERVAL": "off"}) is None
    scheduler = scheduler_from_environment(sessions, {})
    assert scheduler is not None and scheduler.interval == DEFAULT_INTERVAL


async def test_two_competing_processes_exactly_one_takes_the_job(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as first, sessions() as second:
        results = [
            await try_acquire(first, "server-a", interval=HOUR, lease=600, now=START),
            await try_acquire(second, "server-b", interval=HOUR, lease=600, now=START),
        ]
    assert sorted(results) == [False, True]
    async with sessions() as session:
        lock = await session.get(SchedulerLock, JOB)
        assert lock is not None and lock.holder == "server-a" and lock.lease_until == START + timedelta(seconds=600)


async def test_an_expired_lease_lets_another_process_take_over(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        assert await try_acquire(session, "dead", interval=HOUR, lease=600, now=START)
        # Before expiry: refused; the holder itself may renew.
        assert not await try_acquire(session, "alive", interval=HOUR, lease=600, now=START + timedelta(seconds=599))
        assert await try_acquire(session, "dead", interval=HOUR, lease=600, now=START + timedelta(seconds=300))
        assert not await try_acquire(session, "alive", interval=HOUR, lease=600, now=START + timedelta(seconds=800))
        assert await try_acquire(session, "alive", interval=HOUR, lease=600, now=START + timedelta(seconds=901))
        lock = await session.get(SchedulerLock, JOB, populate_existing=True)
        assert lock is not None and lock.holder == "alive"


async def test_an_iteration_applies_the_active_ruleset_once_per_interval_across_schedulers(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    team = await add_team(session, "everyone", strategy="manual")
    customer = await add_customer(session, "c1")
    customer_id = customer.id
    await session.commit()
    sessions = session_factory(engine)
    clock = Clock(START)
    one = Scheduler(sessions, HOUR, holder="one", clock=clock)
    two = Scheduler(sessions, HOUR, holder="two", clock=clock)

    assert await one.run_once() is None  # no active ruleset yet: nothing to run …
    clock.now += timedelta(seconds=HOUR)
    ruleset = await save_ruleset(session, "main", "all: true -> team everyone\n")
    await activate_ruleset(session, ruleset.id)
    await session.commit()

    run = await two.run_once()
    assert run is not None and (run.mode, run.status, run.ruleset_id) == ("apply", "succeeded", ruleset.id)
    assert run.summary["changed"] == 1
    stored = await session.get(Customer, customer_id, populate_existing=True)
    assert stored is not None and stored.team_id == team.id
    # Within the interval neither process runs again.
    clock.now += timedelta(seconds=HOUR / 2)
    assert await one.run_once() is None and await two.run_once() is None
    clock.now += timedelta(seconds=HOUR / 2)
    assert await one.run_once() is not None
    await session.commit()  # a fresh snapshot
    runs = await session.scalar(select(func.count()).select_from(EvaluationRun).where(EvaluationRun.mode == "apply"))
    assert runs == 2


async def test_start_and_stop_run_the_loop(engine: AsyncEngine, session: AsyncSession) -> None:
    await add_team(session, "everyone", strategy="manual")
    await add_customer(session, "c1")
    ruleset = await save_ruleset(session, "main", "all: true -> team everyone\n")
    await activate_ruleset(session, ruleset.id)
    await session.commit()
    scheduler = Scheduler(session_factory(engine), HOUR, holder="loop")
    scheduler.start()
    for _ in range(250):
        await session.commit()  # a fresh snapshot each time
        if await session.scalar(select(func.count()).select_from(EvaluationRun).where(EvaluationRun.status == "succeeded")):
            break
        await asyncio.sleep(0.02)
    await scheduler.stop()
    assert await session.scalar(select(func.count()).select_from(EvaluationRun)) == 1


async def test_the_server_lifespan_runs_the_schedule_unless_it_is_off(
    engine: AsyncEngine, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segmenta.server import create_app

    await add_team(session, "everyone", strategy="manual")
    await add_customer(session, "c1")
    ruleset = await save_ruleset(session, "main", "all: true -> team everyone\n")
    await activate_ruleset(session, ruleset.id)
    await session.commit()

    async def runs_during_lifespan() -> int:
        app = create_app(engine=engine)
        async with app.router.lifespan_context(app):
            for _ in range(50):
                await session.commit()
                done = await session.scalar(
                    select(func.count()).select_from(EvaluationRun).where(EvaluationRun.status == "succeeded")
                )
                if done:
                    break
                await asyncio.sleep(0.02)
        await session.commit()
        return await session.scalar(select(func.count()).select_from(EvaluationRun)) or 0

    monkeypatch.setenv("SEGMENTA_SCHEDULE_INTERVAL", "off")
    assert await runs_during_lifespan() == 0
    monkeypatch.setenv("SEGMENTA_SCHEDULE_INTERVAL", "12h")
    assert await runs_during_lifespan() == 1
