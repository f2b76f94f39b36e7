"""Preview and apply return at once and finish in the background (docs/routing.md, domain/routing/run_tasks.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from segmenta.domain.routing import runs
from segmenta.server import create_app
from segmenta.storage import models
from segmenta.storage.engine import session_factory
from tests.schema.helpers import Api, World
from tests.schema.test_routing_api import ACTIVATE, APPLY, PREVIEW, RULES, save

STATUS = "query($id: ID!) { evaluationRun(id: $id) { status error summary { evaluated changed } } }"


@pytest.fixture
def app(engine: AsyncEngine) -> Starlette:
    return create_app(engine=engine, run_wait=0)


@pytest.fixture
async def impatient(app: Starlette, tokens: dict[str, str]) -> AsyncIterator[Api]:
    """A client of an app that never waits for a run."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://segmenta.test") as client:
        yield Api(client, tokens["admin"])
    await app.state.runs.shutdown()


async def finished(api: Api, run_id: str) -> dict:
    for _ in range(500):
        run = (await api.data(STATUS, {"id": run_id}))["evaluationRun"]
        if run["status"] != "RUNNING":
            return run
        await asyncio.sleep(0.01)
    raise AssertionError(f"run {run_id} did not finish")


class Gate:
    """Holds every run after its writes, before its commit (as a long run would be), until opened."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reached = asyncio.Event()
        self.opened = asyncio.Event()
        report = runs._report

        async def held_report(
            progress: object, run_id: int, step: str, done: int, total: int, status: str = "running"
        ) -> None:
            await report(progress, run_id, step, done, total, status)  # type: ignore[arg-type]
            if step == "write" and done == total:
                self.reached.set()
                await self.opened.wait()

        monkeypatch.setattr(runs, "_report", held_report)

    async def wait_until_reached(self) -> None:
        await asyncio.wait_for(self.reached.wait(), 30)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    return Gate(monkeypatch)


async def team_ids(engine: AsyncEngine) -> dict[str, int | None]:
    async with session_factory(engine)() as session:
        return dict((await session.execute(select(models.Customer.code, models.Customer.team_id))).all())


async def test_apply_returns_running_then_succeeds(impatient: Api, world: World, engine: AsyncEngine, gate: Gate) -> None:
    ruleset = await save(impatient)
    await impatient.data(ACTIVATE, {"id": ruleset["id"]})
    before = await team_ids(engine)
    payload = (await impatient.data(APPLY, {"id": ruleset["id"]}))["applyRuleset"]
    assert payload["userErrors"] == []
    assert payload["run"]["status"] == "RUNNING" and payload["run"]["summary"]["evaluated"] == 0
    await gate.wait_until_reached()
    assert (await impatient.data(STATUS, {"id": payload["run"]["id"]}))["evaluationRun"]["status"] == "RUNNING"
    assert await team_ids(engine) == before  # nothing visible until the run commits

    gate.opened.set()
    done = await finished(impatient, payload["run"]["id"])
    assert done == {"status": "SUCCEEDED", "error": None, "summary": {"evaluated": 6, "changed": 4}}
    teams = await team_ids(engine)
    assert teams["C003"] == world.teams["east_sales"] and teams["C000"] == world.teams["west_sales"]


async def test_user_errors_still_come_back_at_once_and_create_no_run(impatient: Api, world: World, engine: AsyncEngine) -> None:
    payload = (await impatient.data(PREVIEW, {"source": "size = huge -> team nowhere\n"}))["previewRuleset"]
    assert payload["run"] is None and payload["userErrors"][0]["code"] == "HAS_ERRORS"
    async with session_factory(engine)() as session:
        assert (await session.scalars(select(models.EvaluationRun))).all() == []


async def test_shutdown_interrupts_a_running_apply_and_applies_nothing(
    app: Starlette, impatient: Api, world: World, engine: AsyncEngine, gate: Gate
) -> None:
    ruleset = await save(impatient, RULES)
    await impatient.data(ACTIVATE, {"id": ruleset["id"]})
    before = await team_ids(engine)
    payload = (await impatient.data(APPLY, {"id": ruleset["id"]}))["applyRuleset"]
    run_id = payload["run"]["id"]
    await gate.wait_until_reached()
    assert app.state.runs.running != []

    await app.state.runs.shutdown()
    run = (await impatient.data(STATUS, {"id": run_id}))["evaluationRun"]
    assert run["status"] == "FAILED" and run["error"].startswith("interrupted")
    assert app.state.runs.running == []
    async with session_factory(engine)() as session:
        changes = (await session.scalars(select(models.EvaluationChange))).all()
    assert await team_ids(engine) == before and changes == []
