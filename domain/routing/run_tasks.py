"""Evaluation runs in the background, so the API returns at once (docs/routing.md, 'Runs return at once').

A preview or apply request is validated and its run row committed as ``running``
by the caller (domain.routing.runs.plan_run / start_run); the rest of the run
(domain.routing.runs.execute_run) goes to an asyncio task with a session of its own.
The caller then waits at most ``wait`` seconds: a small run is finished by then
and the client gets the complete run in the same response; a large run is
returned while still ``running`` and is followed by polling ``evaluationRun(id)``
or the ``evaluationRunProgress`` subscription.

Settings:

* ``SEGMENTA_RUN_WAIT`` — seconds the API waits for a run before returning it as
  running (default ``2``; ``0`` always returns at once).
* ``SEGMENTA_RUN_HEARTBEAT_GRACE`` — seconds a running run may go without a
  heartbeat before another process declares it interrupted (default ``60``).

Nothing is lost on shutdown: runs still going are cancelled (their transaction
is rolled back, so nothing is half-applied) and marked ``failed`` with the
error ``interrupted``.  A process killed outright cannot mark its runs, so the
process executing a run records itself as the run's ``owner`` and refreshes
``heartbeat_at`` every few seconds (``owned``); every server, at start and then
periodically (``RunLauncher.start``), marks ``failed`` the runs still
``running`` whose heartbeat (or, with none, start) is older than the grace
period and whose owner is not itself (``fail_abandoned``).  The run's
transaction was rolled back by the database when its connection died, so
nothing of it was applied.  Real-time runs are day rows, not tasks: never swept.

Heartbeats are written in transactions of their own, beside the run's.  On
SQLite, while a run holds the write lock (its write transaction), its heartbeats
wait, and so does anyone's sweep: by the time a sweep can write, the run has
committed; and the statement that marks a run re-checks every condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from segmenta.domain import events
from segmenta.domain.events import RunProgressEvent, Subscriber
from segmenta.domain.routing.run_plan import ProgressCallback, RunPlan
from segmenta.domain.routing.runs import execute_run, plan_run, start_run
from segmenta.domain.settings import number_setting
from segmenta.storage.engine import affected_rows
from segmenta.storage.guard import without_statement_limit
from segmenta.storage.models import EvaluationRun, utcnow

logger = logging.getLogger(__name__)

WAIT_SETTING = "SEGMENTA_RUN_WAIT"
DEFAULT_WAIT = 2.0
INTERRUPTED = "interrupted: the server stopped before the run finished; nothing was applied"
GRACE_SETTING = "SEGMENTA_RUN_HEARTBEAT_GRACE"
DEFAULT_GRACE = 60.0
# Heartbeats come this many times per grace period (at most every HEARTBEAT_CAP seconds), so a few
# missed ones (a busy database) do not make a live run look abandoned.
BEATS_PER_GRACE = 6
HEARTBEAT_CAP = 5.0
# A subscriber that heard nothing for this long reads the run row: the run may have ended in a
# process whose events never reach this one (or in none: a sweep after a crash).
SUBSCRIBER_POLL = 5.0

# Names this process in evaluation_runs.owner (host, pid and a random part, unique per start).
THIS_PROCESS = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def wait_from_environment(environ: Mapping[str, str] | None = None) -> float:
    """The run wait in seconds from SEGMENTA_RUN_WAIT; a clear error for a bad value."""
    return number_setting(WAIT_SETTING, DEFAULT_WAIT, minimum=0, environ=environ)


def grace_from_environment(environ: Mapping[str, str] | None = None) -> float:
    """The heartbeat grace period in seconds from SEGMENTA_RUN_HEARTBEAT_GRACE; a clear error for a bad value."""
    return number_setting(GRACE_SETTING, DEFAULT_GRACE, minimum=0, minimum_exclusive=True, environ=environ)


def heartbeat_interval(grace: float) -> float:
    return min(HEARTBEAT_CAP, grace / BEATS_PER_GRACE)


async def _beat(sessions: async_sessionmaker[AsyncSession], run_id: int, owner: str) -> None:
    """Say `owner` executes run `run_id`, now; a failure is only logged (the next beat will do)."""
    try:
        async with sessions() as session:
            await session.execute(
                update(EvaluationRun)
                .where(
                    EvaluationRun.id == run_id,
                    EvaluationRun.status == "running",
                    or_(EvaluationRun.owner.is_(None), EvaluationRun.owner == owner),
                )
                .values(owner=owner, heartbeat_at=utcnow())
            )
            await session.commit()
    except Exception:  # noqa: BLE001 — e.g. SQLite's write lock held by this very run
        logger.debug("heartbeat of run %s skipped", run_id, exc_info=True)


async def _beat_forever(sessions: async_sessionmaker[AsyncSession], run_id: int, owner: str, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await _beat(sessions, run_id, owner)


@contextlib.asynccontextmanager
async def owned(
    sessions: async_sessionmaker[AsyncSession], run_id: int, *, owner: str = THIS_PROCESS, grace: float | None = None
) -> AsyncIterator[None]:
    """Record `owner` as the executor of run `run_id` and keep its heartbeat fresh while the block runs."""
    await _beat(sessions, run_id, owner)
    interval = heartbeat_interval(grace if grace is not None else grace_from_environment())
    beating = asyncio.create_task(_beat_forever(sessions, run_id, owner, interval), name=f"heartbeat of run {run_id}")
    try:
        yield
    finally:
        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)


def _own_sessions(session: AsyncSession) -> async_sessionmaker[AsyncSession]:
    bind = session.bind
    assert isinstance(bind, AsyncEngine)
    return async_sessionmaker(without_statement_limit(bind), expire_on_commit=False)


async def run_owned(
    session: AsyncSession,
    mode: str,
    ruleset_id: int,
    *,
    as_of: datetime | None = None,
    progress: ProgressCallback | None = None,
) -> EvaluationRun:
    """domain.routing.runs.preview_ruleset / apply_ruleset in the caller's session, heartbeating as this process.

    For runs executed outside RunLauncher (the schedule, the command line), so that they too
    are swept when their process dies.
    """
    plan = await plan_run(session, mode, ruleset_id=ruleset_id, as_of=as_of)
    run = await start_run(session, plan)
    async with owned(_own_sessions(session), run.id):
        return await execute_run(session, plan, run.id, progress)


def _abandoned(now: datetime, grace: float, me: str) -> list[ColumnElement[bool]]:
    cutoff = now - timedelta(seconds=grace)
    return [
        EvaluationRun.status == "running",
        EvaluationRun.mode != "realtime",
        or_(EvaluationRun.owner.is_(None), EvaluationRun.owner != me),
        func.coalesce(EvaluationRun.heartbeat_at, EvaluationRun.started_at) < cutoff,
    ]


def interrupted_message(owner: str | None, last_seen: datetime | None) -> str:
    who = f"its process ({owner})" if owner else "its process"
    when = f" after {last_seen:%Y-%m-%d %H:%M:%S} UTC" if last_seen is not None else ""
    return f"interrupted: {who} stopped responding{when}; nothing was applied"


async def fail_abandoned(
    session: AsyncSession, *, grace: float, me: str = THIS_PROCESS, now: datetime | None = None
) -> list[int]:
    """Mark failed the runs whose executing process went silent for longer than `grace`; commits.

    Returns their ids and tells this process's subscribers.  Reads first, so a sweep that finds
    nothing writes nothing (on SQLite it takes no write lock).
    """
    conditions = _abandoned(now or utcnow(), grace, me)
    found = (
        await session.execute(
            select(EvaluationRun.id, EvaluationRun.owner, EvaluationRun.heartbeat_at, EvaluationRun.started_at)
            .where(*conditions)
            .order_by(EvaluationRun.id)
        )
    ).all()
    await session.commit()
    failed: list[int] = []
    for run_id, owner, heartbeat_at, started_at in found:
        # Conditions again: the run may have finished, or beaten, since the read.
        result = await session.execute(
            update(EvaluationRun)
            .where(EvaluationRun.id == run_id, *conditions)
            .values(status="failed", error=interrupted_message(owner, heartbeat_at or started_at), finished_at=utcnow())
        )
        await session.commit()
        if affected_rows(result) == 1:
            failed.append(run_id)
    for run_id in failed:
        logger.warning("evaluation run %s marked interrupted: its process stopped sending heartbeats", run_id)
        events.publish_run_progress(run_id, "done", 1, 1, "failed")
    return failed


async def follow_run(
    sessions: async_sessionmaker[AsyncSession],
    run_id: int,
    progress: Subscriber[RunProgressEvent],
    *,
    poll: float | None = None,
) -> AsyncIterator[RunProgressEvent]:
    """The progress events of run `run_id`, ending with its final one.

    When nothing arrives for `poll` seconds the run row is read: a run that ended where this
    process heard nothing of it (another server, or a sweep of a dead one) still ends here.
    """
    wait = SUBSCRIBER_POLL if poll is None else poll
    while True:
        try:
            item = await asyncio.wait_for(progress.get(), wait)
        except TimeoutError:
            async with sessions() as session:
                status = await session.scalar(select(EvaluationRun.status).where(EvaluationRun.id == run_id))
            if status != "running":
                yield RunProgressEvent(run_id, "done", 1, 1, status or "failed")
                return
            continue
        if item.run_id != run_id:
            continue
        yield item
        if item.finished:
            return


class RunLauncher:
    """Executes started runs in tasks, each with its own session from `sessions`."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        wait: float = DEFAULT_WAIT,
        grace: float | None = None,
        owner: str = THIS_PROCESS,
    ) -> None:
        self.sessions = sessions
        self.wait = wait
        self.grace = grace if grace is not None else grace_from_environment()
        self.owner = owner
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Fail the runs of dead processes now, then keep doing so every half grace period."""
        await self.sweep()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="sweep of abandoned runs")

    async def sweep(self) -> list[int]:
        """One sweep; a failure (SQLite locked by a long apply, say) is logged and left to the next."""
        try:
            async with self._unlimited_sessions()() as session:
                return await fail_abandoned(session, grace=self.grace, me=self.owner)
        except Exception:  # noqa: BLE001 — neither start-up nor the sweeps may end over a database hiccup
            logger.warning("sweep of abandoned runs failed; the next one retries", exc_info=True)
            return []

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.grace / 2)
            await self.sweep()

    def _unlimited_sessions(self) -> async_sessionmaker[AsyncSession]:
        # Runs are long by nature: the request statement timeout is not theirs (storage/guard.py).
        bind = self.sessions.kw.get("bind")
        if isinstance(bind, AsyncEngine):
            return async_sessionmaker(without_statement_limit(bind), expire_on_commit=False)
        return self.sessions

    @property
    def running(self) -> list[int]:
        """Ids of the runs this process is still executing."""
        return sorted(run_id for run_id, task in self._tasks.items() if not task.done())

    async def launch(self, plan: RunPlan, run_id: int) -> bool:
        """Start executing run `run_id`; True when it finished within the wait."""
        task = asyncio.create_task(self._execute(plan, run_id), name=f"evaluation run {run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(run_id, None))
        if self.wait > 0:
            # asyncio.wait never cancels the task: a slow run goes on after the timeout.
            await asyncio.wait({task}, timeout=self.wait)
        return task.done()

    async def join(self, run_id: int) -> None:
        """Wait until run `run_id` (if this process executes it) has finished."""
        task = self._tasks.get(run_id)
        if task is not None:
            await asyncio.wait({task})

    async def _execute(self, plan: RunPlan, run_id: int) -> None:
        sessions = self._unlimited_sessions()
        async with owned(sessions, run_id, owner=self.owner, grace=self.grace), sessions() as session:
            # execute_run records any failure on the run itself; only cancellation escapes.
            await execute_run(session, plan, run_id)

    async def shutdown(self) -> None:
        """Cancel the runs still going and mark them failed (their transactions roll back)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        tasks = {run_id: task for run_id, task in self._tasks.items() if not task.done()}
        if not tasks:
            return
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        async with self.sessions() as session:
            await session.execute(
                update(EvaluationRun)
                .where(EvaluationRun.id.in_(sorted(tasks)), EvaluationRun.status == "running")
                .values(status="failed", error=INTERRUPTED, finished_at=utcnow())
            )
            await session.commit()
        for run_id in sorted(tasks):
            logger.warning("evaluation run %s interrupted by shutdown", run_id)
            events.publish_run_progress(run_id, "done", 1, 1, "failed")
