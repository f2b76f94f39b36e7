"""Tokens against the real `segmenta serve` process: revocation reaches open websockets, and the
GraphiQL link's `?token=` never reaches the server log."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.live_server import LiveServer

RECHECK_SECONDS = 1.0
CHANGES = "subscription { assignmentChanged { customerId cause } }"
CREATE = """mutation { createApiToken(input: {role: VIEWER, label: "websocket"}) {
  secret apiToken { id } userErrors { code } } }"""
REVOKE = "mutation($id: ID!) { revokeApiToken(id: $id) { userErrors { code } } }"
ASSIGN = """mutation($customer: ID!, $employee: ID!) {
  assignManager(customerIds: [$customer], employeeId: $employee, lock: false) { userErrors { code message } } }"""
# Generous: the machine may be loaded; nothing here is timed against a budget.
WAIT = 30


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer.start(
        tmp_path_factory.mktemp("tokens-live"), customers=20, env={"SEGMENTA_TOKEN_RECHECK": str(RECHECK_SECONDS)}
    )
    yield server
    server.stop()


def data(live: LiveServer, query: str, variables: dict[str, Any] | None = None) -> Any:
    status, body = live.query(query, variables)
    assert status == 200 and "errors" not in body, body
    return body["data"]


def new_viewer_token(live: LiveServer) -> tuple[str, str]:
    payload = data(live, CREATE)["createApiToken"]
    assert payload["userErrors"] == []
    return payload["secret"], payload["apiToken"]["id"]


class Reassigner:
    """Moves one customer between two active employees, so each call commits an assignment change."""

    def __init__(self, live: LiveServer) -> None:
        self.live = live
        found = data(live, "{ customers(first: 1) { edges { node { id } } } employees(active: true) { id } }")
        self.customer = found["customers"]["edges"][0]["node"]["id"]
        self.employees = [employee["id"] for employee in found["employees"]]
        self.turn = 0

    def change(self) -> None:
        for _ in range(len(self.employees)):
            self.turn += 1
            employee = self.employees[self.turn % len(self.employees)]
            errors = data(self.live, ASSIGN, {"customer": self.customer, "employee": employee})["assignManager"]
            if not errors["userErrors"]:
                return
        raise AssertionError("no employee could take the customer")


def open_socket(live: LiveServer, token: str) -> AbstractContextManager[ClientConnection]:
    return live.graphql_ws(token, timeout=WAIT)


def receive(socket: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(socket.recv(timeout=WAIT))
    return message


def first_event(socket: ClientConnection, changes: Reassigner) -> dict[str, Any]:
    """Trigger changes until the subscription (registered asynchronously) delivers one."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        changes.change()
        try:
            return json.loads(socket.recv(timeout=1))  # type: ignore[no-any-return]
        except TimeoutError:
            continue
    raise AssertionError("the subscription delivered nothing")


def test_a_revoked_token_ends_its_open_subscription(live: LiveServer) -> None:
    secret, token_id = new_viewer_token(live)
    changes = Reassigner(live)
    with open_socket(live, secret) as socket:
        socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": CHANGES}}))
        delivered = first_event(socket, changes)
        assert delivered["type"] == "next" and delivered["payload"]["data"]["assignmentChanged"]["cause"] == "MANUAL"

        assert data(live, REVOKE, {"id": token_id})["revokeApiToken"]["userErrors"] == []
        time.sleep(RECHECK_SECONDS * 1.5)
        changes.change()
        refused = receive(socket)
        assert refused["type"] == "next", refused
        assert refused["payload"]["data"] is None
        assert [error["extensions"]["code"] for error in refused["payload"]["errors"]] == ["UNAUTHENTICATED"]
        assert "revoked or expired" in refused["payload"]["errors"][0]["message"]
        with pytest.raises(ConnectionClosed) as closed:
            receive(socket)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    assert "Traceback" not in live.log()


def test_an_operation_started_after_revocation_is_refused_at_once(live: LiveServer) -> None:
    secret, token_id = new_viewer_token(live)
    with open_socket(live, secret) as socket:
        socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": "{ stats { teamCount } }"}}))
        assert receive(socket)["type"] == "next"
        assert receive(socket) == {"id": "1", "type": "complete"}

        assert data(live, REVOKE, {"id": token_id})["revokeApiToken"]["userErrors"] == []
        # No wait: an operation's start always checks the token again.
        socket.send(json.dumps({"id": "2", "type": "subscribe", "payload": {"query": CHANGES}}))
        refused = receive(socket)
        assert refused["type"] == "error", refused
        assert [error["extensions"]["code"] for error in refused["payload"]] == ["UNAUTHENTICATED"]


def test_the_graphiql_token_never_reaches_the_server_log(live: LiveServer) -> None:
    secret = "sgm_secret_in_the_address_bar"
    request = urllib.request.Request(f"{live.url}/graphql?token={secret}&x=1", headers={"Accept": "text/html"})
    with urllib.request.urlopen(request, timeout=WAIT) as response:
        assert response.status == 200
    with connect(f"{live.url.replace('http://', 'ws://')}/graphql?access_token={secret}", open_timeout=WAIT):
        pass
    deadline = time.monotonic() + WAIT
    while "access_token=[redacted]" not in live.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = live.log()
    assert "GET /graphql?token=[redacted]&x=1" in log
    assert "WebSocket /graphql?access_token=[redacted]" in log
    assert "sgm_secret" not in log
