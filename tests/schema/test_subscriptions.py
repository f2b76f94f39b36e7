"""GraphQL subscriptions through `schema.subscribe`: run progress, committed assignment changes, authentication."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from graphql import ExecutionResult
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from starlette.testclient import TestClient

from segmenta.domain.access.tokens import authenticate, create_token
from segmenta.domain.customers import profiles
from segmenta.domain.events import hub
from segmenta.domain.routing import runs
from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from segmenta.schema import schema
from segmenta.schema.context import Context
from segmenta.schema.loaders import Loaders
from segmenta.server import create_app
from segmenta.storage import models
from segmenta.storage.engine import create_engine, session_factory
from segmenta.storage.migrate import upgrade
from tests.domain.routing_support import add_customer, add_employee, add_team
from tests.schema.helpers import global_id, key_of

RULES = """
small: size = small -> team standard
rest: true -> team general
"""

PROGRESS = """subscription ($id: ID!) {
  evaluationRunProgress(runId: $id) { runId step done total status run { status summary { evaluated } } }
}"""
CHANGES = """subscription ($customer: ID) {
  assignmentChanged(customerId: $customer) {
    customerId cause rule teamBefore { key } teamAfter { key } managerAfter { name }
  }
}"""


async def _context(session: AsyncSession, token: str | None) -> Context:
    principal = await authenticate(session, token) if token is not None else None
    await session.commit()
    return Context(session=session, principal=principal, loaders=Loaders(session))


async def _admin_token(engine: AsyncEngine) -> str:
    async with session_factory(engine)() as session:
        token = await create_token(session, "admin", label="subscriber")
        await session.commit()
    return token


async def _world(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        ann = await add_employee(session, "Ann")
        bob = await add_employee(session, "Bob")
        await add_team(session, "standard", members=[ann])
        await add_team(session, "general", members=[bob])
        for number in range(5):
            await add_customer(session, f"c{number}", size="small" if number % 2 else "large")
        ruleset = await save_ruleset(session, "subscribed", RULES)
        await activate_ruleset(session, ruleset.id)
        await session.commit()


async def _subscribe(query: str, context: Context, variables: dict[str, Any]) -> AsyncIterator[ExecutionResult]:
    stream = await schema.subscribe(query, variable_values=variables, context_value=context)
    assert not isinstance(stream, ExecutionResult), stream.errors
    return stream  # type: ignore[return-value]


async def _until_subscribed(topic: Any, before: int) -> None:
    # The subscription registers with the hub when its generator first runs; yield to it until it has.
    for _ in range(1000):
        if topic.subscriber_count > before:
            return
        await asyncio.sleep(0)
    raise AssertionError("the subscription never subscribed")


async def test_progress_of_a_preview_run_arrives_and_ends_with_its_final_status(engine: AsyncEngine) -> None:
    await _world(engine)
    token = await _admin_token(engine)
    async with session_factory(engine)() as runner:
        plan = await runs.plan_run(runner, "preview", source=RULES)
        run = await runs.start_run(runner, plan)
        async with session_factory(engine)() as session:
            stream = await _subscribe(PROGRESS, await _context(session, token), {"id": global_id("EvaluationRun", run.id)})
            before = hub.run_progress.subscriber_count
            collected = asyncio.ensure_future(_all(stream))
            await _until_subscribed(hub.run_progress, before)
            await runs.execute_run(runner, plan, run.id)
            results = await asyncio.wait_for(collected, 30)
    assert all(result.errors is None for result in results), [result.errors for result in results]
    events = [result.data["evaluationRunProgress"] for result in results if result.data]
    assert {key_of(event["runId"]) for event in events} == {run.id}
    assert "evaluate" in [event["step"] for event in events]
    assert all(event["status"] == "RUNNING" for event in events[:-1])
    assert (events[-1]["step"], events[-1]["status"]) == ("done", "SUCCEEDED")
    assert events[-1]["run"] == {"status": "SUCCEEDED", "summary": {"evaluated": 5}}


async def test_a_finished_run_yields_its_final_state_once(engine: AsyncEngine) -> None:
    await _world(engine)
    token = await _admin_token(engine)
    async with session_factory(engine)() as session:
        run = await runs.preview_ruleset(session, source=RULES)
        stream = await _subscribe(PROGRESS, await _context(session, token), {"id": global_id("EvaluationRun", run.id)})
        results = await asyncio.wait_for(_all(stream), 30)
    assert [result.data["evaluationRunProgress"]["status"] for result in results if result.data] == ["SUCCEEDED"]


async def _all(stream: AsyncIterator[ExecutionResult]) -> list[ExecutionResult]:
    return [result async for result in stream]


async def _first(stream: AsyncIterator[ExecutionResult]) -> ExecutionResult:
    return await stream.__anext__()


async def test_assignment_changed_gets_a_committed_realtime_change_and_nothing_rolled_back(engine: AsyncEngine) -> None:
    await _world(engine)
    token = await _admin_token(engine)
    async with session_factory(engine)() as session:
        stream = await _subscribe(CHANGES, await _context(session, token), {})
        before = hub.assignments.subscriber_count
        first = asyncio.ensure_future(_first(stream))
        await _until_subscribed(hub.assignments, before)
        async with session_factory(engine)() as writer:
            await profiles.create_customer(writer, {"code": "undone", "name": "Undone", "size": "small"})
            await writer.rollback()
            created = await profiles.create_customer(writer, {"code": "kept", "name": "Kept", "size": "small"})
            await writer.commit()
        result = await asyncio.wait_for(first, 30)
        await stream.aclose()  # type: ignore[attr-defined]
    assert result.errors is None, result.errors
    assert result.data == {
        "assignmentChanged": {
            "customerId": global_id("Customer", created.id),
            "cause": "REALTIME",
            "rule": "small",
            "teamBefore": None,
            "teamAfter": {"key": "standard"},
            "managerAfter": {"name": "Ann"},
        }
    }


async def test_assignment_changed_filters_by_customer_and_reports_apply_runs(engine: AsyncEngine) -> None:
    await _world(engine)
    token = await _admin_token(engine)
    async with session_factory(engine)() as session:
        active = await session.scalar(select(models.RulesetVersion.id).where(models.RulesetVersion.status == "active"))
        wanted = await session.scalar(select(models.Customer.id).where(models.Customer.code == "c1"))
        assert active is not None and wanted is not None
        stream = await _subscribe(CHANGES, await _context(session, token), {"customer": global_id("Customer", wanted)})
        before = hub.assignments.subscriber_count
        first = asyncio.ensure_future(_first(stream))
        await _until_subscribed(hub.assignments, before)
        async with session_factory(engine)() as runner:
            await runs.apply_ruleset(runner, active)
        result = await asyncio.wait_for(first, 30)
        await stream.aclose()  # type: ignore[attr-defined]
    assert result.errors is None, result.errors
    change = result.data["assignmentChanged"]
    assert (change["customerId"], change["cause"], change["rule"], change["teamAfter"]) == (
        global_id("Customer", wanted), "RUN", "small", {"key": "standard"}
    )


async def test_a_subscription_without_a_valid_token_is_refused(engine: AsyncEngine) -> None:
    await _world(engine)
    async with session_factory(engine)() as session:
        for context in (await _context(session, None), await _context(session, "not-a-token")):
            outcome = await schema.subscribe(CHANGES, context_value=context)
            results = [outcome] if isinstance(outcome, ExecutionResult) else await _all(outcome)  # type: ignore[arg-type]
            assert len(results) == 1
            assert results[0].data is None
            assert [error.extensions["code"] for error in results[0].errors or []] == ["UNAUTHENTICATED"]


def test_websocket_token_from_connection_init_and_refusal_without_one(tmp_path: Path) -> None:
    """The real transport (graphql-transport-ws): a token in `connection_init` authenticates; none is refused."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ws.db'}"

    async def prepare() -> tuple[str, int]:
        engine = create_engine(url)
        await upgrade(engine)
        async with session_factory(engine)() as session:
            token = await create_token(session, "viewer", label="websocket")
            await add_customer(session, "c1", size="small")
            await session.commit()
            run = await runs.preview_ruleset(session, source="rest: true -> tag seen")
        await engine.dispose()
        return token, run.id

    token, run_id = asyncio.run(prepare())
    subscribe = {"query": PROGRESS, "variables": {"id": global_id("EvaluationRun", run_id)}}
    with TestClient(create_app(url, schedule=False)) as client:
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as socket:
            socket.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
            assert socket.receive_json()["type"] == "connection_ack"
            socket.send_json({"id": "1", "type": "subscribe", "payload": subscribe})
            message = socket.receive_json()
            assert message["type"] == "next", message
            assert message["payload"]["data"]["evaluationRunProgress"]["status"] == "SUCCEEDED"
            assert socket.receive_json() == {"id": "1", "type": "complete"}
        for payload in ({}, {"Authorization": "Bearer wrong"}):
            with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as socket:
                socket.send_json({"type": "connection_init", "payload": payload})
                assert socket.receive_json()["type"] == "connection_ack"
                socket.send_json({"id": "2", "type": "subscribe", "payload": subscribe})
                message = socket.receive_json()
                assert message["type"] == "error", message
                assert [error["extensions"]["code"] for error in message["payload"]] == ["UNAUTHENTICATED"]


AGENT_CHANGES = """subscription {
  assignmentChanged { customerId cause teamBefore { key } teamAfter { key } customer { code } }
}"""


async def _agent_token(engine: AsyncEngine, email: str) -> str:
    async with session_factory(engine)() as session:
        token = await create_token(session, "agent", employee_email=email, label="agent subscriber")
        await session.commit()
    return token


async def _take(stream: AsyncIterator[ExecutionResult], count: int) -> list[ExecutionResult]:
    taken = [await stream.__anext__() for _ in range(count)]
    await stream.aclose()  # type: ignore[attr-defined]
    return taken


async def test_an_agent_gets_only_the_realtime_changes_of_their_customers(engine: AsyncEngine) -> None:
    """Ann (an agent, in team standard) gets the change that brings a customer to her and the one that
    takes it away (its `customer` then null: no longer hers), never the change of Bob's customer."""
    await _world(engine)
    token = await _agent_token(engine, "ann@example.com")
    async with session_factory(engine)() as session:
        stream = await _subscribe(AGENT_CHANGES, await _context(session, token), {})
        before = hub.assignments.subscriber_count
        first = asyncio.ensure_future(_first(stream))
        await _until_subscribed(hub.assignments, before)
        async with session_factory(engine)() as writer:
            # Bob's customer comes first: were it delivered, it would be the first notice.
            big = await profiles.create_customer(writer, {"code": "big", "name": "Big", "size": "large"})
            await writer.commit()
            little = await profiles.create_customer(writer, {"code": "little", "name": "Little", "size": "small"})
            await writer.commit()
            arrived = await asyncio.wait_for(first, 30)
            second = asyncio.ensure_future(_first(stream))
            await profiles.update_customer(writer, little.id, {"size": "large"})
            await writer.commit()
            left = await asyncio.wait_for(second, 30)
        await stream.aclose()  # type: ignore[attr-defined]
    assert (arrived.errors, left.errors) == (None, None)
    assert big.id != little.id
    assert arrived.data == {"assignmentChanged": {
        "customerId": global_id("Customer", little.id), "cause": "REALTIME", "teamBefore": None,
        "teamAfter": {"key": "standard"}, "customer": {"code": "little"},
    }}
    assert left.data == {"assignmentChanged": {
        "customerId": global_id("Customer", little.id), "cause": "REALTIME", "teamBefore": {"key": "standard"},
        "teamAfter": {"key": "general"}, "customer": None,
    }}


async def test_an_agent_gets_only_their_customers_changes_of_an_apply_run(engine: AsyncEngine) -> None:
    """The apply run routes c1, c3 (small) to Ann's team and c0, c2, c4 to Bob's: Ann's subscription gets
    c1 and c3, then the real-time change that follows; none of Bob's customers."""
    await _world(engine)
    token = await _agent_token(engine, "ann@example.com")
    async with session_factory(engine)() as session:
        active = await session.scalar(select(models.RulesetVersion.id).where(models.RulesetVersion.status == "active"))
        by_code = {code: key for code, key in (await session.execute(select(models.Customer.code, models.Customer.id))).all()}
        assert active is not None
        stream = await _subscribe(AGENT_CHANGES, await _context(session, token), {})
        before = hub.assignments.subscriber_count
        collected = asyncio.ensure_future(_take(stream, 3))
        await _until_subscribed(hub.assignments, before)
        async with session_factory(engine)() as runner:
            await runs.apply_ruleset(runner, active)
        async with session_factory(engine)() as writer:
            last = await profiles.create_customer(writer, {"code": "last", "name": "Last", "size": "small"})
            await writer.commit()
        results = await asyncio.wait_for(collected, 30)
    assert all(result.errors is None for result in results), [result.errors for result in results]
    notices = [result.data["assignmentChanged"] for result in results if result.data]
    by_id = {global_id("Customer", key): code for code, key in {**by_code, "last": last.id}.items()}
    assert sorted(by_id[notice["customerId"]] for notice in notices) == ["c1", "c3", "last"]
    assert all(notice["teamAfter"] == {"key": "standard"} for notice in notices)
    assert sorted(notice["customer"]["code"] for notice in notices) == ["c1", "c3", "last"]


def test_a_subscriber_that_missed_events_gets_events_lost_then_complete(tmp_path: Path) -> None:
    """Over the real transport: when events were lost (here: as the relay does when its connection drops),
    the subscription's last message is one EVENTS_LOST error, and a new one is refused the same way
    until the outage ends."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'lost.db'}"

    async def prepare() -> str:
        engine = create_engine(url)
        await upgrade(engine)
        async with session_factory(engine)() as session:
            token = await create_token(session, "viewer", label="websocket")
            await session.commit()
        await engine.dispose()
        return token

    token = asyncio.run(prepare())
    subscribe = {"query": CHANGES, "variables": {}}
    with TestClient(create_app(url, schedule=False)) as client:
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as socket:
            socket.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
            assert socket.receive_json()["type"] == "connection_ack"
            before = hub.assignments.subscriber_count
            socket.send_json({"id": "1", "type": "subscribe", "payload": subscribe})
            for _ in range(500):
                if hub.assignments.subscriber_count > before:
                    break
                time.sleep(0.01)
            assert client.portal is not None
            client.portal.call(hub.set_outage, "the relay lost its connection")
            try:
                message = socket.receive_json()
                assert message["type"] == "next" and message["payload"]["data"] is None, message
                (error,) = message["payload"]["errors"]
                assert error["extensions"] == {"code": "EVENTS_LOST", "retryable": True}
                assert "the relay lost its connection" in error["message"] and "subscribe again" in error["message"]
                assert socket.receive_json() == {"id": "1", "type": "complete"}
                socket.send_json({"id": "2", "type": "subscribe", "payload": subscribe})
                message = socket.receive_json()
                assert message["payload"]["errors"][0]["extensions"]["code"] == "EVENTS_LOST", message
            finally:
                client.portal.call(hub.set_outage, None)
