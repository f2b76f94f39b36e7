"""`segmenta serve --workers 2`, as a user runs it: two real processes behind one port, on SQLite and
PostgreSQL (one server per database for the module).

Each keep-alive connection is served by one worker; `/health` says which (`process`), so a test can
hold one connection per worker and make a change in the worker it chooses.  Checked: events reach a
subscriber whichever worker did the work; concurrent writes from many clients across both workers
all succeed (SQLite's writers queue, none gets "database is locked" or BUSY); the scheduled apply
runs once per interval whatever the number of workers; a worker that dies is reported and replaced;
SIGTERM stops the parent and every child.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from segmenta.storage.engine import create_engine
from segmenta.storage.models import EvaluationRun
from tests.live_server import LiveServer, new_postgres_database, segmenta

WAIT = 30
SCHEDULE_SECONDS = 2
SAMPLE_RULES = Path(__file__).resolve().parents[2] / "domain" / "sample_rules.seg"
CHANGES = """subscription { assignmentChanged { customerId cause runId managerAfter { id } } }"""
ASSIGN = """mutation ($customer: ID!, $employee: ID!) {
  assignManager(customerIds: [$customer], employeeId: $employee, lock: true) {
    customers { id manager { id } } userErrors { code message } } }"""
PURCHASE = """mutation ($input: PurchaseInput!) {
  recordPurchase(input: $input) { purchase { id } userErrors { code message } } }"""
SAVE = """mutation ($source: String!) { saveRuleset(name: "sample", source: $source) { ruleset { id } userErrors { code message } } }"""
ACTIVATE = """mutation ($id: ID!) { activateRuleset(id: $id) { ruleset { id } userErrors { code message } } }"""

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(not os.environ.get("SEGMENTA_TEST_POSTGRES_URL"), reason="SEGMENTA_TEST_POSTGRES_URL unset"),
    ),
]


@pytest.fixture(scope="module", params=BACKENDS)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    directory = tmp_path_factory.mktemp(f"workers-{request.param}")
    env = {"SEGMENTA_SCHEDULE_INTERVAL": f"{SCHEDULE_SECONDS}s", "SEGMENTA_RUN_WAIT": "5"}
    if request.param == "sqlite":
        server = LiveServer.start(directory, customers=60, env=env, workers=2)
        try:
            yield server
        finally:
            server.stop()
        return
    with new_postgres_database(os.environ["SEGMENTA_TEST_POSTGRES_URL"], "segmenta_workers") as url:
        server = LiveServer.start(directory, customers=60, env=env, workers=2, database_url=url)
        try:
            yield server
        finally:
            server.stop()


def global_id(kind: str, key: int) -> str:
    return base64.b64encode(f"{kind}:{key}".encode()).decode()


class Sticky:
    """One keep-alive connection, hence one worker process."""

    def __init__(self, live: LiveServer) -> None:
        self.live = live
        self.connection = http.client.HTTPConnection(live.url.removeprefix("http://"), timeout=WAIT)
        self.connection.request("GET", "/health")
        response = self.connection.getresponse()
        self.process: int = json.loads(response.read())["process"]

    def query(self, query: str, variables: dict[str, Any] | None = None, role: str = "admin") -> tuple[int, Any]:
        body = json.dumps({"query": query, "variables": variables or {}})
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.live.tokens[role]}"}
        self.connection.request("POST", "/graphql", body=body, headers=headers)
        response = self.connection.getresponse()
        return response.status, json.loads(response.read())

    def data(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        status, body = self.query(query, variables)
        assert status == 200 and "errors" not in body, body
        return body["data"]

    def close(self) -> None:
        self.connection.close()


def one_per_worker(live: LiveServer) -> dict[int, Sticky]:
    """A connection to each of the two workers (the kernel spreads new connections over the workers
    that listen; the second may still be starting when the first answers /health)."""
    found: dict[int, Sticky] = {}
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        connection = Sticky(live)
        if connection.process in found:
            connection.close()
            time.sleep(0.05)
        else:
            found[connection.process] = connection
        if len(found) == 2:
            return found
    raise AssertionError(f"in {WAIT} s every connection reached the same worker: {sorted(found)}")


def server_processes(live: LiveServer) -> list[int]:
    """The parent's worker processes (multiprocessing's resource tracker, also a child, left out)."""
    children = Path(f"/proc/{live.process.pid}/task/{live.process.pid}/children").read_text().split()
    return [int(child) for child in children if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


def test_two_workers_serve_one_port(live: LiveServer) -> None:
    workers = one_per_worker(live)
    try:
        assert set(workers) <= set(server_processes(live)) and live.process.pid not in workers
    finally:
        for connection in workers.values():
            connection.close()


def test_an_assignment_change_reaches_a_subscriber_whichever_worker_made_it(live: LiveServer) -> None:
    workers = one_per_worker(live)
    try:
        first = next(iter(workers.values()))
        customers = [node["id"] for node in first.data("{ customers(first: 2) { nodes { id } } }")["customers"]["nodes"]]
        employees = [row["id"] for row in first.data("{ employees(active: true) { id } }")["employees"]]
        with live.graphql_ws(live.tokens["viewer"], timeout=WAIT) as socket:
            socket.send(json.dumps({"id": "changes", "type": "subscribe", "payload": {"query": CHANGES}}))
            time.sleep(0.5)  # the subscription is registered in its worker before the changes
            expected: dict[str, str] = {}
            # One change in each worker: whichever holds the websocket, the other one's must travel.
            for (_process, connection), customer in zip(sorted(workers.items()), customers, strict=True):
                for employee in employees:
                    answer = connection.data(ASSIGN, {"customer": customer, "employee": employee})["assignManager"]
                    if not answer["userErrors"]:
                        expected[customer] = employee
                        break
            assert len(expected) == 2, "no employee could take the customers"
            seen: dict[str, str] = {}
            deadline = time.monotonic() + WAIT
            while any(seen.get(customer) != employee for customer, employee in expected.items()):
                assert time.monotonic() < deadline, f"events seen: {seen}, expected {expected}"
                message = json.loads(socket.recv(timeout=WAIT))
                assert message["type"] == "next" and "errors" not in message["payload"], message
                change = message["payload"]["data"]["assignmentChanged"]
                if change["cause"] == "MANUAL":
                    seen[change["customerId"]] = (change["managerAfter"] or {}).get("id")
    finally:
        for connection in workers.values():
            connection.close()


def test_concurrent_writes_from_many_clients_across_both_workers_all_succeed(live: LiveServer) -> None:
    """Writers queue for SQLite's one write lock (BEGIN IMMEDIATE, busy timeout): no error, no BUSY."""
    probe = Sticky(live)
    customers = [node["id"] for node in probe.data("{ customers(first: 20) { nodes { id } } }")["customers"]["nodes"]]
    before = {node["id"]: node["metrics"]["purchaseCount"] for node in probe.data(
        "{ customers(first: 20) { nodes { id metrics { purchaseCount } } } }")["customers"]["nodes"]}
    probe.close()
    clients, each = 16, 8
    processes: set[int] = set()
    lock = threading.Lock()

    def client(number: int) -> list[Any]:
        connection = Sticky(live)
        with lock:
            processes.add(connection.process)
        problems = []
        try:
            for round_ in range(each):
                customer = customers[(number + round_) % len(customers)]
                variables = {"input": {"customerId": customer, "amount": "10.00", "product": f"w{number}-{round_}"}}
                status, body = connection.query(PURCHASE, variables)
                if status != 200 or "errors" in body or body["data"]["recordPurchase"]["userErrors"]:
                    problems.append(body)
        finally:
            connection.close()
        return problems

    with ThreadPoolExecutor(clients) as pool:
        problems = [problem for result in pool.map(client, range(clients)) for problem in result]
    assert problems == []
    assert len(processes) == 2, "every client reached the same worker"
    probe = Sticky(live)
    after = {node["id"]: node["metrics"]["purchaseCount"] for node in probe.data(
        "{ customers(first: 20) { nodes { id metrics { purchaseCount } } } }")["customers"]["nodes"]}
    probe.close()
    assert sum(after.values()) - sum(before.values()) == clients * each


def test_a_command_line_apply_reaches_the_servers_subscribers(live: LiveServer) -> None:
    """`segmenta apply` runs in a process of its own; the servers' subscribers still get its changes."""
    with live.graphql_ws(live.tokens["viewer"], timeout=WAIT) as socket:
        socket.send(json.dumps({"id": "changes", "type": "subscribe", "payload": {"query": CHANGES}}))
        time.sleep(0.5)
        printed = segmenta("apply", str(SAMPLE_RULES), "--database-url", live.database_url)
        found = re.search(r"run (\d+) \(apply.*?(\d+) changed", printed)
        assert found is not None and int(found.group(2)) > 0, printed
        run_id = global_id("EvaluationRun", int(found.group(1)))
        message = json.loads(socket.recv(timeout=WAIT))
        assert message["type"] == "next" and "errors" not in message["payload"], message
        change = message["payload"]["data"]["assignmentChanged"]
        assert (change["cause"], change["runId"]) == ("RUN", run_id), change


async def _scheduled_runs(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(
                select(EvaluationRun.started_at, EvaluationRun.finished_at, EvaluationRun.owner)
                .where(EvaluationRun.mode == "apply")
                .order_by(EvaluationRun.id)
            )
            return list(result.all())
    finally:
        await engine.dispose()


def test_the_schedule_applies_once_per_interval_across_workers(live: LiveServer) -> None:
    """Both workers poll the schedule; its lease lets one of them run each interval (runs never overlap,
    and start at least an interval apart)."""
    earlier = {run.started_at for run in asyncio.run(_scheduled_runs(live.database_url))}  # the command line's
    probe = Sticky(live)
    saved = probe.data(SAVE, {"source": SAMPLE_RULES.read_text(encoding="utf-8")})["saveRuleset"]
    assert saved["userErrors"] == [], saved
    assert probe.data(ACTIVATE, {"id": saved["ruleset"]["id"]})["activateRuleset"]["userErrors"] == []
    probe.close()
    deadline = time.monotonic() + WAIT
    finished: list[Any] = []
    while len(finished) < 2:
        assert time.monotonic() < deadline, f"scheduled runs: {finished}"
        time.sleep(0.5)
        runs = asyncio.run(_scheduled_runs(live.database_url))
        finished = [run for run in runs if run.finished_at is not None and run.started_at not in earlier]
    for earlier, later in zip(finished, finished[1:], strict=False):
        assert earlier.finished_at <= later.started_at, runs
        # The interval counts from a run's start: the next starts that long after (rounding aside).
        assert (later.started_at - earlier.started_at).total_seconds() >= SCHEDULE_SECONDS - 0.1, runs


def test_a_worker_that_dies_is_reported_and_replaced(live: LiveServer) -> None:
    if live.database_url.startswith("postgresql"):
        pytest.skip("the supervisor is the same whatever the database: tested once, on SQLite")
    before = server_processes(live)
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + WAIT
    while True:
        now = server_processes(live)
        if victim not in now and len(now) == 2:
            break
        assert time.monotonic() < deadline, f"no replacement for worker {victim}: {now}"
        time.sleep(0.2)
    assert f"worker process [{victim}] exited with code -9" in live.log()
    replacement = (set(now) - set(before)).pop()
    deadline = time.monotonic() + 2 * WAIT  # a whole start-up, on a machine that may be loaded
    while True:  # it serves once started (its socket queued the connections meanwhile)
        connection = Sticky(live)
        connection.close()
        if connection.process == replacement:
            break
        assert time.monotonic() < deadline, "the replacement never answered"


def test_sigterm_stops_the_parent_and_every_worker(live: LiveServer) -> None:
    children = server_processes(live)
    assert len(children) == 2
    live.stop()
    assert live.process.returncode == 0, live.log()[-2000:]
    for child in children:
        assert not Path(f"/proc/{child}").exists() or "zombie" in Path(f"/proc/{child}/status").read_text().lower()
    log = live.log()
    assert "Received SIGTERM, exiting." in log and log.count("Application shutdown complete.") == 2
