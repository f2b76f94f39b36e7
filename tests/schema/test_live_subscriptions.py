"""Both subscriptions on the real `segmenta serve` process, over a real socket with the
graphql-transport-ws protocol and the token in connection_init, as graphql-ws clients use them
(docs/graphql.md, Subscriptions)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection

from tests.live_server import LiveServer

WAIT = 60
PROGRESS = """subscription ($id: ID!) {
  evaluationRunProgress(runId: $id) { runId step done total status run { status summary { evaluated } } }
}"""
CHANGES = """subscription ($customer: ID) {
  assignmentChanged(customerId: $customer) { customerId cause teamAfter { key } }
}"""
SAMPLE_RULES = Path(__file__).resolve().parents[2] / "domain" / "sample_rules.seg"
SAVE = """mutation ($source: String!) { saveRuleset(name: "sample", source: $source) { ruleset { id } userErrors { code message } } }"""
ACTIVATE = """mutation ($id: ID!) { activateRuleset(id: $id) { ruleset { id } userErrors { code message } } }"""
PREVIEW = """mutation ($id: ID!) { previewRuleset(id: $id) { run { id status } userErrors { code message } } }"""
CREATE = """mutation ($input: CustomerInput!) {
  createCustomer(input: $input) { customer { id team { key } } userErrors { code message } } }"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # SEGMENTA_RUN_WAIT=0: a run is returned while it is still running, so its progress can be followed.
    server = LiveServer.start(
        tmp_path_factory.mktemp("subscriptions-live"), customers=3000, env={"SEGMENTA_RUN_WAIT": "0"}
    )
    try:
        saved = data(server, SAVE, {"source": SAMPLE_RULES.read_text(encoding="utf-8")})["saveRuleset"]
        assert saved["userErrors"] == [], saved
        activated = data(server, ACTIVATE, {"id": saved["ruleset"]["id"]})["activateRuleset"]
        assert activated["userErrors"] == [], activated
        yield server
    finally:
        server.stop()


def data(live: LiveServer, query: str, variables: dict[str, Any] | None = None) -> Any:
    status, body = live.query(query, variables)
    assert status == 200 and "errors" not in body, body
    return body["data"]


def messages_until_complete(socket: ClientConnection, operation: str) -> list[dict[str, Any]]:
    received = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        message = json.loads(socket.recv(timeout=WAIT))
        assert message.get("id") == operation, message
        if message["type"] == "complete":
            return received
        assert message["type"] == "next", message
        received.append(message["payload"])
    raise AssertionError(f"no complete within {WAIT} s: {received}")


def test_evaluation_run_progress_streams_a_running_preview_to_its_end(live: LiveServer) -> None:
    active = data(live, "{ activeRuleset { id } }")["activeRuleset"]["id"]
    with live.graphql_ws(live.tokens["viewer"], timeout=WAIT) as socket:
        started = data(live, PREVIEW, {"id": active})["previewRuleset"]
        assert started["userErrors"] == []
        run = started["run"]
        socket.send(json.dumps({"id": "progress", "type": "subscribe", "payload": {"query": PROGRESS, "variables": {"id": run["id"]}}}))
        payloads = messages_until_complete(socket, "progress")
    assert all("errors" not in payload for payload in payloads), payloads
    events = [payload["data"]["evaluationRunProgress"] for payload in payloads]
    assert {event["runId"] for event in events} == {run["id"]}
    final = events[-1]
    assert (final["step"], final["status"]) == ("done", "SUCCEEDED")
    assert final["run"] == {"status": "SUCCEEDED", "summary": {"evaluated": 3000}}
    assert all(event["status"] == "RUNNING" for event in events[:-1])
    if run["status"] == "RUNNING":
        # Followed from the middle: at least one step before the end, counts never going back.
        assert len(events) >= 2, events
        done = [event["done"] for event in events if event["step"] == "evaluate"]
        assert done == sorted(done)


def test_assignment_changed_delivers_a_customer_routed_in_real_time(live: LiveServer) -> None:
    with live.graphql_ws(live.tokens["viewer"], timeout=WAIT) as socket:
        socket.send(json.dumps({"id": "changes", "type": "subscribe", "payload": {"query": CHANGES}}))
        # The subscription registers asynchronously: create customers until one is delivered.
        deadline = time.monotonic() + WAIT
        created: dict[str, str | None] = {}
        while time.monotonic() < deadline:
            code = f"live-{len(created)}"
            payload = data(
                live, CREATE, {"input": {"code": code, "name": "Live Subscriber", "size": "LARGE", "region": "east"}}
            )["createCustomer"]
            assert payload["userErrors"] == []
            customer = payload["customer"]
            created[customer["id"]] = (customer["team"] or {}).get("key")
            try:
                message = json.loads(socket.recv(timeout=1))
            except TimeoutError:
                continue
            assert message["type"] == "next", message
            change = message["payload"]["data"]["assignmentChanged"]
            assert change["customerId"] in created
            assert change["cause"] == "REALTIME"
            assert (change["teamAfter"] or {}).get("key") == created[change["customerId"]]
            assert created[change["customerId"]] is not None  # the sample policy routes a large eastern customer
            return
    raise AssertionError("the subscription delivered nothing")
