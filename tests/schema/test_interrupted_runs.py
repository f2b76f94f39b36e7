"""`evaluationRunProgress` of a run whose process died: the subscriber gets the final FAILED state,
whether the sweep that failed it ran in this process (an event) or in another (no event: the
subscription reads the run when nothing came for a while)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from graphql import ExecutionResult
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain.access.tokens import authenticate, create_token
from segmenta.domain.events import hub
from segmenta.domain.routing import run_tasks
from segmenta.domain.routing.run_tasks import fail_abandoned
from segmenta.schema import schema
from segmenta.schema.context import Context
from segmenta.schema.loaders import Loaders
from segmenta.storage.engine import session_factory
from segmenta.storage.models import EvaluationRun, utcnow
from tests.schema.helpers import global_id

PROGRESS = """subscription ($id: ID!) {
  evaluationRunProgress(runId: $id) { step status run { status error } }
}"""


async def _stale_run(engine: AsyncEngine) -> int:
    now = utcnow()
    async with session_factory(engine)() as session:
        run = EvaluationRun(
            mode="apply",
            status="running",
            as_of=now,
            started_at=now - timedelta(minutes=10),
            summary={},
            owner="crashed-host:9:dead",
            heartbeat_at=now - timedelta(minutes=5),
        )
        session.add(run)
        await session.commit()
        return run.id


async def _subscribe(engine: AsyncEngine, run_id: int) -> tuple[Any, Any]:
    session = session_factory(engine)()
    token = await create_token(session, "admin", label="subscriber")
    principal = await authenticate(session, token)
    await session.commit()
    context = Context(session=session, principal=principal, loaders=Loaders(session))
    stream = await schema.subscribe(PROGRESS, variable_values={"id": global_id("EvaluationRun", run_id)}, context_value=context)
    assert not isinstance(stream, ExecutionResult), stream.errors
    return stream, session


async def _until_subscribed(before: int) -> None:
    for _ in range(1000):
        if hub.run_progress.subscriber_count > before:
            return
        await asyncio.sleep(0)
    raise AssertionError("the subscription never subscribed")


async def _events(stream: Any) -> list[dict[str, Any]]:
    results = [result async for result in stream]
    assert all(result.errors is None for result in results), [result.errors for result in results]
    return [result.data["evaluationRunProgress"] for result in results]


async def test_a_sweep_in_this_process_ends_the_subscription_with_failed(engine: AsyncEngine) -> None:
    run_id = await _stale_run(engine)
    stream, session = await _subscribe(engine, run_id)
    try:
        before = hub.run_progress.subscriber_count
        collected = asyncio.ensure_future(_events(stream))
        await _until_subscribed(before)
        async with session_factory(engine)() as sweeper:
            assert await fail_abandoned(sweeper, grace=60, me="this-host:1:live") == [run_id]
        events = await asyncio.wait_for(collected, 30)
    finally:
        await session.close()
    assert [(event["step"], event["status"]) for event in events] == [("done", "FAILED")]
    assert events[0]["run"]["error"].startswith("interrupted: its process (crashed-host:9:dead)")


async def test_a_run_failed_where_no_event_reaches_this_process_still_ends_the_subscription(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_tasks, "SUBSCRIBER_POLL", 0.05)
    run_id = await _stale_run(engine)
    stream, session = await _subscribe(engine, run_id)
    try:
        before = hub.run_progress.subscriber_count
        collected = asyncio.ensure_future(_events(stream))
        await _until_subscribed(before)
        await asyncio.sleep(0.2)
        assert not collected.done()
        # Another server's sweep: the row changes, no event is published here.
        async with session_factory(engine)() as other_process:
            await other_process.execute(
                update(EvaluationRun)
                .where(EvaluationRun.id == run_id)
                .values(status="failed", error="interrupted: elsewhere", finished_at=utcnow())
            )
            await other_process.commit()
        events = await asyncio.wait_for(collected, 30)
    finally:
        await session.close()
    assert events == [{"step": "done", "status": "FAILED", "run": {"status": "FAILED", "error": "interrupted: elsewhere"}}]
