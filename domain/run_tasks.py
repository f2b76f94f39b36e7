"""Evaluation runs in the background, so the API returns at once (SPEC §5).

A preview or apply request is validated and its run row committed as ``running``
by the caller (domain.runs.plan_run / start_run); the rest of the run
(domain.runs.execute_run) goes to an asyncio task with a session of its own.
The caller then waits at most ``wait`` seconds: a small run is finished by then
and the client gets the complete run in the same response; a large run is
returned while still ``running`` and is followed by polling ``evaluationRun(id)``
or the ``evaluationRunProgress`` subscription.

Setting: ``SEGMENTA_RUN_WAIT`` — seconds the API waits for a run before
returning it as running (default ``2``; ``0`` always returns at once).

Nothing is lost on shutdown: runs still going are cancelled (their transaction
is rolled back, so nothing is half-applied) and marked ``failed`` with the
error ``interrupted``.  A process killed outright cannot mark its runs; they
stay ``running`` in the table (docs/routing.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain import events
from domain.errors import UserError
from domain.runs import RunPlan, execute_run
from storage.models import EvaluationRun, utcnow

logger = logging.getLogger(__name__)

WAIT_SETTING = "SEGMENTA_RUN_WAIT"
DEFAULT_WAIT = 2.0
INTERRUPTED = "interrupted: the server stopped before the run finished; nothing was applied"


def wait_from_environment(environ: Mapping[str, str] | None = None) -> float:
    """The run wait in seconds from SEGMENTA_RUN_WAIT; a clear error for a bad value."""
    raw = (environ if environ is not None else os.environ).get(WAIT_SETTING, "").strip()
    if not raw:
        return DEFAULT_WAIT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise UserError(f"{WAIT_SETTING} must be a number of seconds ≥ 0, not {raw!r}", field=WAIT_SETTING)
    return seconds


class RunLauncher:
    """Executes started runs in tasks, each with its own session from `sessions`."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, wait: float = DEFAULT_WAIT) -> None:
        self.sessions = sessions
        self.wait = wait
        self._tasks: dict[int, asyncio.Task[None]] = {}

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
        async with self.sessions() as session:
            # execute_run records any failure on the run itself; only cancellation escapes.
            await execute_run(session, plan, run_id)

    async def shutdown(self) -> None:
        """Cancel the runs still going and mark them failed (their transactions roll back)."""
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
