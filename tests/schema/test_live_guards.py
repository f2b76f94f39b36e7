"""Against the real `segmenta serve` process: an expensive `where` read is stopped by the statement
timeout and holds the only expensive-read slot meanwhile (others get BUSY, cheap reads are served);
a run left RUNNING by a killed process is failed when a server starts."""

from __future__ import annotations

import base64
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.live_server import LiveServer

# Each term is a correlated lookup per customer: 440 of them over 800 customers take the
# database seconds (measured 10 s at 1,000 customers), far past the 1 s limit set below.
HEAVY = " or ".join(f"tags contains t{number % 400}" for number in range(440))
COUNT = "query($w: String!) { customers(where: $w, first: 1) { totalCount } }"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer.start(
        tmp_path_factory.mktemp("live-guards"),
        customers=800,
        env={
            "SEGMENTA_WHERE_MAX_TERMS": "1000",
            "SEGMENTA_STATEMENT_TIMEOUT": "1",
            "SEGMENTA_EXPENSIVE_READS": "1",
            "SEGMENTA_EXPENSIVE_READ_WAIT": "0.2",
        },
    )
    try:
        yield live
    finally:
        live.stop()


def _code(body: Any) -> str | None:
    errors = body.get("errors") if isinstance(body, dict) else None
    return errors[0]["extensions"]["code"] if errors else None


def test_a_heavy_where_times_out_while_others_get_busy_and_cheap_reads_are_served(server: LiveServer) -> None:
    heavy: dict[str, Any] = {}

    def run_heavy() -> None:
        heavy["response"] = server.query(COUNT, {"w": HEAVY})
        heavy["finished"] = time.monotonic()

    thread = threading.Thread(target=run_heavy)
    thread.start()
    busy_at = cheap_at = None
    cheap: Any = None
    while thread.is_alive() and busy_at is None:
        _, body = server.query(COUNT, {"w": "region = east"})
        if _code(body) == "BUSY":
            busy_at = time.monotonic()
            assert body["errors"][0]["extensions"]["retryable"] is True
            status, cheap = server.query("{ customers(first: 2) { totalCount edges { node { id code } } } }")
            cheap_at = time.monotonic()
            assert status == 200
        time.sleep(0.02)
    thread.join(120)

    status, body = heavy["response"]
    assert status == 200
    assert _code(body) == "TIMEOUT", body
    assert body["errors"][0]["extensions"]["retryable"] is True
    # While the heavy read held the only slot, another `where` was refused and a cheap read answered.
    assert busy_at is not None and busy_at < heavy["finished"]
    assert cheap_at is not None and cheap_at < heavy["finished"]
    assert cheap["data"]["customers"]["totalCount"] == 800
    # Afterwards the slot is free and the server is healthy.
    status, body = server.query(COUNT, {"w": "region = east or region = west"})
    assert status == 200 and "errors" not in body, body
    assert "Traceback" not in server.log()


def test_a_condition_over_the_term_limit_is_refused_before_it_runs(server: LiveServer) -> None:
    status, body = server.query(COUNT, {"w": " or ".join(["true"] * 1001)})
    assert status == 200
    assert _code(body) == "INVALID_CONDITION"
    [diagnostic] = body["errors"][0]["extensions"]["diagnostics"]
    assert (diagnostic["code"], diagnostic["column"]) == ("too-complex", 1000 * len("true or ") + 1)
    status, body = server.query(COUNT, {"w": " or ".join(["true"] * 1000)})
    assert body["data"]["customers"]["totalCount"] == 800


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _insert_run(database: Path, mode: str, owner: str | None, heartbeat: datetime | None) -> int:
    now = datetime.now(UTC).replace(tzinfo=None)
    with sqlite3.connect(database) as connection:
        cursor = connection.execute(
            "INSERT INTO evaluation_runs (mode, status, as_of, started_at, summary, owner, heartbeat_at) "
            "VALUES (?, 'running', ?, ?, '{}', ?, ?)",
            (mode, _stamp(now), _stamp(now - timedelta(minutes=20)), owner, _stamp(heartbeat) if heartbeat else None),
        )
        return int(cursor.lastrowid)


def _run_state(server: LiveServer, run_id: int) -> dict[str, Any]:
    run_global_id = base64.b64encode(f"EvaluationRun:{run_id}".encode()).decode()
    status, body = server.query("query($id: ID!) { evaluationRun(id: $id) { status error } }", {"id": run_global_id})
    assert status == 200 and "errors" not in body, body
    return dict(body["data"]["evaluationRun"])


def test_a_run_left_running_by_a_killed_process_is_failed_when_a_server_starts(
    server: LiveServer, tmp_path: Path
) -> None:
    database = Path(server.database_url.split("///", 1)[1])
    server.stop()
    now = datetime.now(UTC).replace(tzinfo=None)
    crashed = _insert_run(database, "apply", "crashed-host:4242:0dead", now - timedelta(minutes=10))
    alive = _insert_run(database, "preview", "other-host:77:a11ve", now)
    realtime = _insert_run(database, "realtime", None, None)

    restarted = LiveServer.serve(
        server.database_url, tmp_path, env={"SEGMENTA_RUN_HEARTBEAT_GRACE": "300"}, tokens=server.tokens
    )
    try:
        failed = _run_state(restarted, crashed)
        assert failed["status"] == "FAILED"
        assert failed["error"].startswith("interrupted: its process (crashed-host:4242:0dead) stopped responding")
        assert _run_state(restarted, alive) == {"status": "RUNNING", "error": None}
        assert _run_state(restarted, realtime)["status"] == "RUNNING"
    finally:
        restarted.stop()
