"""Request limits against the real `segmenta serve` process: what an attacker's probe found.

One server for the module, with small limits where a test needs to reach one quickly (a body
of at most 512 KiB, 6 seconds per operation) and room for a document that is slow but within
its limits: thousands of aliased customer pages, each its own SQL statements, run one after
another (so the server stays responsive while it works, and the work can be stopped).
"""

from __future__ import annotations

import json
import os
import select
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from graphql import get_introspection_query
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.live_server import LiveServer

BODY_LIMIT = 512 * 1024
TIMEOUT_SECONDS = 6
COST_LIMIT = 1_000_000
ENV = {
    "SEGMENTA_MAX_BODY_BYTES": str(BODY_LIMIT),
    "SEGMENTA_REQUEST_TIMEOUT": str(TIMEOUT_SECONDS),
    "SEGMENTA_MAX_QUERY_COST": str(COST_LIMIT),
    "SEGMENTA_MAX_ALIASES": "5000",
    "SEGMENTA_MAX_QUERY_TOKENS": "100000",
    "SEGMENTA_MAX_QUERY_BYTES": str(BODY_LIMIT),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer.start(tmp_path_factory.mktemp("limits"), customers=150, env=ENV, roles=("admin", "viewer"))
    yield live
    live.stop()


def nested_customers(levels: int, first: int = 100) -> str:
    """customers -> nodes -> team -> customers -> … `levels` connections deep."""
    selection = "code"
    for level in range(levels):
        inner = f"team {{ {selection} }}" if level else selection
        selection = f"customers(first: {first}) {{ nodes {{ code {inner} }} }}"
    return "{ " + selection + " }"


# Cost 3000 * 301, within COST_LIMIT (and the body, token and alias limits above); some 12 seconds of work
# without the time limit (measured: 1200 aliases took 4.9 s once customers converted only the fields asked for).
SLOW = "{ " + " ".join(
    f"c{index}: customers(first: 100, orderBy: CODE_DESC) {{ totalCount nodes {{ code }} }}" for index in range(3000)
) + " }"


def fan_out(levels: int = 40) -> str:
    lines = ["fragment F0 on Query { stats { customerCount } }"]
    lines += [f"fragment F{index} on Query {{ ...F{index - 1} ...F{index - 1} }}" for index in range(1, levels + 1)]
    return "\n".join(lines) + f"\n{{ ...F{levels} }}"


def health_seconds(server: LiveServer) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(f"{server.url}/health", timeout=30) as response:
        assert response.status == 200
    return time.monotonic() - started


def cpu_seconds(server: LiveServer) -> float:
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(server: LiveServer) -> int:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def cpu_used_over(server: LiveServer, seconds: float) -> float:
    before = cpu_seconds(server)
    time.sleep(seconds)
    return cpu_seconds(server) - before


def wait_for_log(server: LiveServer, text: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in server.log():
            return True
        time.sleep(0.1)
    return False


def raw_request(server: LiveServer, headers: dict[str, str], body_start: bytes = b"") -> socket.socket:
    """A POST to /graphql over a plain socket: the headers exactly as given, then `body_start`."""
    host, port = server.url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=30)
    lines = ["POST /graphql HTTP/1.1", f"Host: {host}", *(f"{name}: {value}" for name, value in headers.items())]
    connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body_start)
    return connection


def read_response(connection: socket.socket, timeout: float = 30) -> tuple[int, dict[str, Any]]:
    connection.settimeout(timeout)
    raw = b""
    while b"\r\n\r\n" not in raw or len(raw.partition(b"\r\n\r\n")[2]) < _content_length(raw):
        chunk = connection.recv(65536)
        if not chunk:
            break
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body[: _content_length(raw)])


def _content_length(raw: bytes) -> int:
    for line in raw.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 1 << 30


def single_error(body: dict[str, Any]) -> dict[str, Any]:
    [error] = body["errors"]
    return error


# -- operations ---------------------------------------------------------------------------------


def test_the_fragment_fan_out_is_refused_at_once_while_health_answers(server: LiveServer) -> None:
    document = fan_out()
    assert len(document.encode()) < 2_100
    answers: list[tuple[int, Any]] = []
    started = time.monotonic()
    attackers = [
        threading.Thread(target=lambda: answers.append(server.query(document, role="viewer"))) for _ in range(4)
    ]
    for attacker in attackers:
        attacker.start()
    assert health_seconds(server) < 10
    for attacker in attackers:
        attacker.join(timeout=60)
    assert time.monotonic() - started < 30
    assert len(answers) == 4
    for status, body in answers:
        assert status == 200
        error = single_error(body)
        assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert error["extensions"]["limit"] == "cost"
        assert f"query cost {2 * 2**40} exceeds the maximum of {COST_LIMIT}" in error["message"]
    assert health_seconds(server) < 10


def test_an_over_cost_nested_connection_query_is_refused(server: LiveServer) -> None:
    status, body = server.query(nested_customers(3))
    assert status == 200
    error = single_error(body)
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["value"] > COST_LIMIT
    assert f"exceeds the maximum of {COST_LIMIT}" in error["message"]
    assert body["data"] is None


def test_graphiql_introspection_passes(server: LiveServer) -> None:
    status, body = server.query(get_introspection_query(descriptions=True, input_value_deprecation=True))
    assert status == 200 and "errors" not in body
    assert any(type_["name"] == "Customer" for type_ in body["data"]["__schema"]["types"])


def test_a_slow_operation_stops_at_the_time_limit(server: LiveServer) -> None:
    started = time.monotonic()
    status, body = server.post({"query": SLOW}, token=server.tokens["viewer"], timeout=120)
    elapsed = time.monotonic() - started
    assert status == 200
    error = single_error(body)
    assert error["extensions"] == {"code": "TIMEOUT", "retryable": True}
    assert f"time limit of {TIMEOUT_SECONDS} s" in error["message"]
    assert TIMEOUT_SECONDS <= elapsed < 60
    # The work stopped with the answer: the server is idle again.
    assert cpu_used_over(server, 1.5) < 0.5
    assert health_seconds(server) < 10


def test_a_client_that_disconnects_gets_its_operation_cancelled(server: LiveServer) -> None:
    body = json.dumps({"query": SLOW}).encode()
    headers = {
        "Authorization": f"Bearer {server.tokens['viewer']}",
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
    }
    stopped_before = server.log().count("SEGMENTA_REQUEST_TIMEOUT")
    connection = raw_request(server, headers, body)
    time.sleep(1)
    # It is working on the operation: a tenth of a CPU second more, within 0.5 s on a quiet machine;
    # a busy one gets longer, still well within the time limit (the operation is some 20 s of work).
    cpu_before = cpu_seconds(server)
    deadline = time.monotonic() + TIMEOUT_SECONDS / 3
    while cpu_seconds(server) - cpu_before <= 0.1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cpu_seconds(server) - cpu_before > 0.1
    connection.close()
    assert wait_for_log(server, "client disconnected before the answer: its operation was cancelled")
    # Cancelled, not left to run until the time limit stopped it; nothing goes on after.
    assert server.log().count("SEGMENTA_REQUEST_TIMEOUT") == stopped_before
    assert cpu_used_over(server, 1) < 0.5
    assert health_seconds(server) < 10


# -- bodies -------------------------------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer sgm_not-a-real-token"])
def test_a_huge_body_without_a_valid_token_is_refused_before_it_is_read(
    server: LiveServer, authorization: str | None
) -> None:
    rss_before = rss_kib(server)
    headers = {"Content-Type": "application/json", "Content-Length": str(500 * 1024 * 1024)}
    if authorization:
        headers["Authorization"] = authorization
    # The answer comes while 499 of the 500 MB are still unsent: the body was never waited for.
    connection = raw_request(server, headers, b"[" * (1024 * 1024))
    with connection:
        status, body = read_response(connection)
    assert status == 401
    assert single_error(body)["extensions"]["code"] == "UNAUTHENTICATED"
    assert rss_kib(server) - rss_before < 20 * 1024
    assert health_seconds(server) < 10


def test_a_body_over_the_limit_gets_413(server: LiveServer) -> None:
    token = server.tokens["viewer"]
    # Announced too large: refused before reading.
    declared = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Content-Length": str(BODY_LIMIT + 1)}
    with raw_request(server, declared) as connection:
        status, body = read_response(connection)
    assert status == 413
    error = single_error(body)
    assert error["extensions"]["code"] == "REQUEST_TOO_LARGE"
    assert str(BODY_LIMIT) in error["message"]
    # Not announced (chunked): refused once the limit is passed, while the client is still sending.
    chunked = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    with raw_request(server, chunked) as connection:
        status = None
        for _ in range(4 * BODY_LIMIT // 8192):
            try:
                connection.sendall(b"2000\r\n" + b" " * 8192 + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            if select.select([connection], [], [], 0.02)[0]:
                break
        status, body = read_response(connection)
    assert status == 413
    assert single_error(body)["extensions"]["code"] == "REQUEST_TOO_LARGE"
    assert health_seconds(server) < 10


BAD_BODIES = [
    (b'{"query": "{ stats { customerCount } }", "x": "\xff\xfe"}', "not valid UTF-8"),
    (b"[" * 100_000, "nests JSON 100000 levels deep"),
    (b'{"query": "{ stats { customerCount } }", "variables": ' + b"[" * 50 + b"]" * 50 + b"}", "levels deep"),
    (b'{"query": ', "not valid JSON"),
    (b'[{"query": "{ stats { customerCount } }"}]', "must be a JSON object"),
    (b"42", "must be a JSON object"),
    (b'"{ stats { customerCount } }"', "must be a JSON object"),
    (b'{"variables": {}}', "`query` must be a string"),
    (b'{"query": "{ stats { customerCount } }", "variables": [1, 2]}', "`variables` must be a JSON object"),
    (b'{"query": "{ stats { customerCount } }", "variables": "x"}', "`variables` must be a JSON object"),
    (b'{"query": "{ stats { customerCount } }", "operationName": 7}', "`operationName` must be a string"),
    (
        b'{"query": "query Q($ids: [ID!]!) { __typename }", "variables": {"ids": [' + b",".join([b'"a"'] * 10_001) + b"]}}",
        "at most 10000",
    ),
]


@pytest.mark.parametrize(("body", "message"), BAD_BODIES, ids=[message for _, message in BAD_BODIES])
def test_bad_bodies_get_400_with_a_code(server: LiveServer, body: bytes, message: str) -> None:
    status, answer = server.post(body, token=server.tokens["viewer"])
    assert status == 400, answer
    error = single_error(answer)
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert message in error["message"]


def test_a_body_that_is_not_json_is_refused_with_a_code(server: LiveServer) -> None:
    status, answer = server.post(b"{ stats { customerCount } }", token=server.tokens["viewer"], headers={"Content-Type": "text/plain"})
    assert status == 400
    assert single_error(answer)["extensions"]["code"] == "BAD_REQUEST"
    assert "application/json" in single_error(answer)["message"]


def test_a_websocket_message_over_the_body_limit_closes_the_socket(server: LiveServer) -> None:
    url = f"{server.url.replace('http://', 'ws://')}/graphql"
    with connect(url, subprotocols=["graphql-transport-ws"], open_timeout=30, max_size=None) as socket:
        socket.send(json.dumps({"type": "connection_init", "payload": {"padding": "x" * BODY_LIMIT}}))
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # message too big
    assert health_seconds(server) < 10
