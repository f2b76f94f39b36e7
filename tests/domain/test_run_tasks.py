"""domain/routing/run_tasks.py: SEGMENTA_RUN_WAIT and SEGMENTA_RUN_HEARTBEAT_GRACE parsing, run ownership and
heartbeats, the sweep of runs whose process died, and followers of a run.  The launcher's waiting is
tested through the API (tests/schema/test_background_runs.py), a crash and restart against the real
server (tests/schema/test_live_guards.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from segmenta.domain import events
from segmenta.domain.errors import UserError
from segmenta.domain.events import RunProgressEvent, hub
from segmenta.domain.routing import runs
from segmenta.domain.routing.run_tasks import (
    DEFAULT_GRACE,
    DEFAULT_WAIT,
    RunLauncher,
    fail_abandoned,
    follow_run,
    grace_from_environment,
    heartbeat_interval,
    owned,
    wait_from_environment,
)
from segmenta.storage.engine import create_engine, session_factory
from segmenta.storage.guard import limit_statements
from segmenta.storage.models import Customer, EvaluationRun, Team, utcnow


@pytest.mark.parametrize(("raw", "seconds"), [("", DEFAULT_WAIT), ("0", 0.0), ("2.5", 2.5), (" 10 ", 10.0)])
def test_wait_setting(raw: str, seconds: float) -> None:
    assert wait_from_environment({"SEGMENTA_RUN_WAIT": raw}) == seconds


def test_default_wait_without_the_setting() -> None:
    assert wait_from_environment({}) == DEFAULT_WAIT


@pytest.mark.parametrize("raw", ["-1", "soon", "nan", "inf", "2s"])
def test_bad_wait_setting_is_a_clear_error(raw: str) -> None:
    with pytest.raises(UserError, match="SEGMENTA_RUN_WAIT must be a number of seconds"):
        wait_from_environment({"SEGMENTA_RUN_WAIT": raw})


# ---------------------------------------------------------------------------
# Runs of a process that died: owner, heartbeat, sweep, subscribers
# ---------------------------------------------------------------------------

ME = "this-host:100:aaaa"
RULES = "rest: true -> team general\n"


async def _run_row(
    session: AsyncSession,
    *,
    mode: str = "apply",
    status: str = "running",
    owner: str | None = None,
    heartbeat: timedelta | None = None,
    started: timedelta = timedelta(minutes=30),
) -> int:
    now = utcnow()
    run = EvaluationRun(
        mode=mode,
        status=status,
        as_of=now,
        started_at=now - started,
        summary={},
        owner=owner,
        heartbeat_at=None if heartbeat is None else now - heartbeat,
    )
    session.add(run)
    await session.commit()
    return run.id


async def _state(session: AsyncSession, run_id: int) -> tuple[str, str | None]:
    row = (
        await session.execute(select(EvaluationRun.status, EvaluationRun.error).where(EvaluationRun.id == run_id))
    ).one()
    return row.status, row.error


async def test_a_sweep_fails_the_runs_of_silent_processes_and_leaves_live_ones(session: AsyncSession) -> None:
    dead = await _run_row(session, owner="crashed-host:7:bbbb", heartbeat=timedelta(minutes=5))
    no_heartbeat = await _run_row(session, mode="preview")  # started long ago by a process that never beat
    live_elsewhere = await _run_row(session, owner="other-host:8:cccc", heartbeat=timedelta(seconds=3))
    mine = await _run_row(session, owner=ME, heartbeat=timedelta(minutes=5))
    realtime = await _run_row(session, mode="realtime")
    just_started = await _run_row(session, started=timedelta(seconds=1))
    finished = await _run_row(session, status="succeeded", owner="crashed-host:7:bbbb", heartbeat=timedelta(hours=1))

    with hub.run_progress.subscribe() as progress:
        failed = await fail_abandoned(session, grace=60, me=ME)
        announced = [await progress.get() for _ in range(progress.pending())]

    assert failed == [dead, no_heartbeat]
    assert [(event.run_id, event.status, event.finished) for event in announced] == [
        (dead, "failed", True),
        (no_heartbeat, "failed", True),
    ]
    status, error = await _state(session, dead)
    assert status == "failed"
    assert error is not None and error.startswith("interrupted: its process (crashed-host:7:bbbb) stopped responding")
    assert (await _state(session, no_heartbeat))[0] == "failed"
    for untouched in (live_elsewhere, mine, realtime, just_started):
        assert await _state(session, untouched) == ("running", None)
    assert (await _state(session, finished))[0] == "succeeded"
    # A second sweep finds nothing more.
    assert await fail_abandoned(session, grace=60, me=ME) == []


async def test_an_owned_run_beats_while_it_executes_and_no_longer_after(session: AsyncSession, engine: AsyncEngine) -> None:
    run_id = await _run_row(session, started=timedelta(minutes=10))
    sessions = session_factory(engine)
    async with owned(sessions, run_id, owner=ME, grace=0.3):
        first = await session.scalar(select(EvaluationRun.heartbeat_at).where(EvaluationRun.id == run_id))
        assert await session.scalar(select(EvaluationRun.owner).where(EvaluationRun.id == run_id)) == ME
        await session.commit()
        latest = first
        for _ in range(200):
            await asyncio.sleep(0.05)
            latest = await session.scalar(select(EvaluationRun.heartbeat_at).where(EvaluationRun.id == run_id))
            await session.commit()
            if latest > first:
                break
        assert latest > first
        # Meanwhile another process's sweep leaves it alone.
        assert await fail_abandoned(session, grace=60, me="other-host:1:dddd") == []
    await asyncio.sleep(0.2)
    stopped = await session.scalar(select(EvaluationRun.heartbeat_at).where(EvaluationRun.id == run_id))
    await session.commit()
    await asyncio.sleep(0.3)
    assert await session.scalar(select(EvaluationRun.heartbeat_at).where(EvaluationRun.id == run_id)) == stopped


async def test_a_follower_gets_the_final_state_of_a_run_that_ended_without_an_event(
    session: AsyncSession, engine: AsyncEngine
) -> None:
    run_id = await _run_row(session, owner="crashed-host:7:bbbb", heartbeat=timedelta(seconds=1))
    with hub.run_progress.subscribe() as progress:
        following = asyncio.ensure_future(_collect(follow_run(session_factory(engine), run_id, progress, poll=0.05)))
        await asyncio.sleep(0.2)
        assert not following.done()
        # Another process marks it failed: no event reaches this one.
        await session.execute(update(EvaluationRun).where(EvaluationRun.id == run_id).values(status="failed"))
        await session.commit()
        events = await asyncio.wait_for(following, 30)
    assert [(event.run_id, event.step, event.status) for event in events] == [(run_id, "done", "failed")]


async def test_a_follower_passes_on_the_events_of_its_run_only(session: AsyncSession, engine: AsyncEngine) -> None:
    run_id = await _run_row(session, owner=ME, heartbeat=timedelta(seconds=1))
    with hub.run_progress.subscribe() as progress:
        following = asyncio.ensure_future(_collect(follow_run(session_factory(engine), run_id, progress, poll=30)))
        events.publish_run_progress(run_id + 1, "evaluate", 1, 2)
        events.publish_run_progress(run_id, "evaluate", 1, 2)
        events.publish_run_progress(run_id, "done", 1, 1, "succeeded")
        collected = await asyncio.wait_for(following, 30)
    assert [(event.run_id, event.step, event.status) for event in collected] == [
        (run_id, "evaluate", "running"),
        (run_id, "done", "succeeded"),
    ]


async def _collect(stream: AsyncIterator[RunProgressEvent]) -> list[RunProgressEvent]:
    return [item async for item in stream]


async def test_the_launcher_runs_free_of_the_request_statement_limit(session: AsyncSession, engine: AsyncEngine) -> None:
    """The request sessions stop statements after a limit; a run launched from them must not."""
    await _world_for_runs(session)
    plan = await runs.plan_run(session, "preview", source=RULES)
    run = await runs.start_run(session, plan)
    # A limit no statement meets: any statement of the run under it would be stopped.
    launcher = RunLauncher(session_factory(limit_statements(engine, 0.000001)), wait=0, grace=60, owner=ME)
    await launcher.launch(plan, run.id)
    await launcher.join(run.id)
    row = await session.get(EvaluationRun, run.id, populate_existing=True)
    assert row is not None and (row.status, row.error, row.owner) == ("succeeded", None, ME)


async def _world_for_runs(session: AsyncSession) -> None:
    session.add(Team(key="general", name="General", kind="general", strategy="none"))
    session.add(Customer(code="c1", name="C1"))
    await session.commit()


@pytest.mark.parametrize(("raw", "seconds"), [("", DEFAULT_GRACE), ("90", 90.0), ("0.5", 0.5)])
def test_grace_setting(raw: str, seconds: float) -> None:
    assert grace_from_environment({"SEGMENTA_RUN_HEARTBEAT_GRACE": raw}) == seconds


@pytest.mark.parametrize("raw", ["0", "-1", "soon", "inf"])
def test_bad_grace_setting_is_a_clear_error(raw: str) -> None:
    with pytest.raises(UserError, match="SEGMENTA_RUN_HEARTBEAT_GRACE must be a number of seconds > 0"):
        grace_from_environment({"SEGMENTA_RUN_HEARTBEAT_GRACE": raw})


def test_heartbeats_come_several_times_per_grace_period() -> None:
    assert heartbeat_interval(60) <= 60 / 4
    assert heartbeat_interval(0.3) <= 0.3 / 4


async def test_the_launcher_sweeps_at_start_and_stops_sweeping_at_shutdown(
    session: AsyncSession, engine: AsyncEngine
) -> None:
    dead = await _run_row(session, owner="crashed-host:7:bbbb", heartbeat=timedelta(minutes=5))
    launcher = RunLauncher(session_factory(engine), grace=60, owner=ME)
    await launcher.start()
    try:
        assert (await _state(session, dead))[0] == "failed"
        await session.commit()
    finally:
        await launcher.shutdown()
    assert launcher._sweeper is None


async def test_a_sweep_that_cannot_reach_the_database_does_not_stop_the_server(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'no-such-directory' / 'x.db'}")
    launcher = RunLauncher(session_factory(unreachable), grace=60, owner=ME)
    try:
        await launcher.start()  # start-up goes on
        assert "sweep of abandoned runs failed" in caplog.text
    finally:
        await launcher.shutdown()
        await unreachable.dispose()
