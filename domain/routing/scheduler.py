"""Scheduled re-application of the active ruleset (docs/routing.md, 'Scheduled apply': time moves customers too).

Day-based metrics (`days_since_purchase`, …) change without any write, so the
server re-applies the active ruleset on a schedule, as an ordinary apply run
(domain.routing.runs.apply_ruleset: recorded, summarised, all-or-nothing), heartbeating
as the process's other runs do (domain/routing/run_tasks.py).

Setting: ``SEGMENTA_SCHEDULE_INTERVAL`` — seconds (``3600``) or a number with a
unit ``s``/``m``/``h``/``d`` (``90m``, ``24h``, ``7d``); default ``24h``;
``off`` (or ``0``) disables the schedule.

One process at a time across servers: the ``scheduler_locks`` row of the job is
a lease.  A process takes it with one atomic statement::

    UPDATE scheduler_locks SET holder = :me, lease_until = :now + lease
    WHERE name = :job
      AND (lease_until IS NULL OR lease_until < :now OR holder = :me)
      AND (last_run_at IS NULL OR last_run_at <= :now - interval)

(or inserts the row when there is none; of two concurrent inserts the primary key
lets one win).  Only the process whose statement changed the row runs; it then
records ``last_run_at`` and releases the lease.  So however many servers poll,
each interval sees one run, and a process that died mid-run blocks the job only
until its lease expires.  This works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from segmenta.domain.errors import UserError
from segmenta.domain.routing.rulesets import active_ruleset
from segmenta.domain.routing.run_tasks import run_owned
from segmenta.storage.engine import affected_rows
from segmenta.storage.models import EvaluationRun, SchedulerLock, utcnow

logger = logging.getLogger(__name__)

INTERVAL_SETTING = "SEGMENTA_SCHEDULE_INTERVAL"
DEFAULT_INTERVAL = 24 * 3600.0
JOB = "apply_active_ruleset"
# How long a run may hold the job before another process may take over.
DEFAULT_LEASE = 3600.0
# How often a process checks whether the job is due (capped by the interval).
MAX_POLL = 60.0

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_INTERVAL = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")

_locks = SchedulerLock.__table__


class ScheduleSettingError(ValueError):
    """SEGMENTA_SCHEDULE_INTERVAL is not understood."""


def parse_interval(value: str | None) -> float | None:
    """Seconds between runs; None when the schedule is off.  Empty or unset means the default (daily)."""
    if value is None or not value.strip():
        return DEFAULT_INTERVAL
    text = value.strip().lower()
    if text in ("off", "none", "disabled", "false", "0"):
        return None
    match = _INTERVAL.fullmatch(text)
    if match is None:
        raise ScheduleSettingError(
            f"{INTERVAL_SETTING}={value!r} is not an interval: use seconds (3600), a number with s, m, h or d "
            "(90m, 24h, 7d), or off"
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds <= 0:
        return None
    return seconds


def interval_from_environment(environ: Mapping[str, str] | None = None) -> float | None:
    return parse_interval((environ if environ is not None else os.environ).get(INTERVAL_SETTING))


def default_holder() -> str:
    """Names this process in the lock row (host, pid and a random part, unique per instance)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def try_acquire(
    session: AsyncSession, holder: str, *, interval: float, lease: float, now: datetime, job: str = JOB
) -> bool:
    """Take the job's lease when it is due and free (or already ours); commits.  True when taken."""
    until = now + timedelta(seconds=lease)
    due_before = now - timedelta(seconds=interval)
    result = await session.execute(
        update(_locks)
        .where(
            _locks.c.name == job,
            or_(_locks.c.lease_until.is_(None), _locks.c.lease_until < now, _locks.c.holder == holder),
            or_(_locks.c.last_run_at.is_(None), _locks.c.last_run_at <= due_before),
        )
        .values(holder=holder, lease_until=until)
    )
    taken = affected_rows(result) == 1
    exists = taken or await session.scalar(select(_locks.c.name).where(_locks.c.name == job)) is not None
    await session.commit()
    if exists:
        return taken
    try:
        await session.execute(insert(_locks).values(name=job, holder=holder, lease_until=until, last_run_at=None))
        await session.commit()
    except IntegrityError:
        # Another process inserted the row first: it runs.
        await session.rollback()
        return False
    return True


async def release(session: AsyncSession, holder: str, *, ran_at: datetime, now: datetime, job: str = JOB) -> None:
    """Record the run and give the lease back (only if we still hold it); commits."""
    await session.execute(
        update(_locks)
        .where(_locks.c.name == job, _locks.c.holder == holder)
        .values(last_run_at=ran_at, lease_until=now)
    )
    await session.commit()


@dataclass
class Scheduler:
    """Re-applies the active ruleset every `interval` seconds, one process at a time."""

    sessions: async_sessionmaker[AsyncSession]
    interval: float
    holder: str = field(default_factory=default_holder)
    lease: float = DEFAULT_LEASE
    clock: Callable[[], datetime] = utcnow
    _task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)

    async def run_once(self) -> EvaluationRun | None:
        """One check: when this process gets the due job, apply the active ruleset.

        Returns the apply run, or None when the job was not ours to run (not due, or
        another process holds it) or no ruleset is active.
        """
        started = self.clock()
        async with self.sessions() as session:
            if not await try_acquire(session, self.holder, interval=self.interval, lease=self.lease, now=started):
                return None
            run: EvaluationRun | None = None
            try:
                ruleset = await active_ruleset(session)
                await session.commit()
                if ruleset is None:
                    logger.info("scheduled apply: no active ruleset, nothing to do")
                else:
                    # Heartbeating as this process, so a crash mid-run is swept (domain/routing/run_tasks.py).
                    run = await run_owned(session, "apply", ruleset.id)
                    logger.info("scheduled apply: run %s of ruleset %s %s", run.id, ruleset.id, run.status)
            except UserError as error:
                # E.g. a team of the active ruleset was deleted: the run cannot start; retry next interval.
                await session.rollback()
                logger.warning("scheduled apply refused: %s", error.message)
            finally:
                await release(session, self.holder, ran_at=started, now=self.clock())
            return run

    async def run_forever(self) -> None:
        """Check every `min(interval, 60 s)` until stop() is called."""
        poll = min(self.interval, MAX_POLL)
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except Exception:  # noqa: BLE001 — a database hiccup must not end the schedule
                logger.exception("scheduled apply failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), poll)

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._stopping = asyncio.Event()
            self._task = asyncio.create_task(self.run_forever(), name="segmenta-scheduler")
        return self._task

    async def stop(self) -> None:
        """Stop after the current iteration: a run in progress finishes (it is all-or-nothing anyway)."""
        if self._task is not None:
            self._stopping.set()
            await self._task
            self._task = None


def scheduler_from_environment(
    sessions: async_sessionmaker[AsyncSession], environ: Mapping[str, str] | None = None
) -> Scheduler | None:
    """The scheduler the settings ask for, or None when SEGMENTA_SCHEDULE_INTERVAL is off."""
    interval = interval_from_environment(environ)
    if interval is None:
        return None
    return Scheduler(sessions, interval)
