"""Lock contention on the real served process: two `segmenta serve` on one SQLite file.

A write that cannot get SQLite's write lock within SEGMENTA_SQLITE_BUSY_TIMEOUT is
answered BUSY (retryable, nothing written), never INTERNAL_SERVER_ERROR; concurrent
purchases through both servers are each stored once or refused as BUSY.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from segmenta.schema.ids import encode_id
from tests.live_server import LiveServer

PURCHASE = """
mutation($customer: ID!, $amount: Money!) {
  recordPurchase(input: {customerId: $customer, amount: $amount}) { purchase { amount } userErrors { code } }
}
"""
BUSY_TIMEOUT = "0.3"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveServer]]:
    directory = tmp_path_factory.mktemp("busy")
    env = {"SEGMENTA_SQLITE_BUSY_TIMEOUT": BUSY_TIMEOUT}
    first = LiveServer.start(directory, customers=20, env=env)
    second = None
    try:
        second = LiveServer.serve(first.database_url, directory, env=env, tokens=first.tokens)
        yield first, second
    finally:
        if second is not None:
            second.stop()
        first.stop()


def _database_file(server: LiveServer) -> Path:
    database = make_url(server.database_url).database
    assert database is not None
    return Path(database)


def _stored_purchases(server: LiveServer) -> int:
    with sqlite3.connect(_database_file(server)) as connection:
        return int(connection.execute("SELECT count(*) FROM purchases").fetchone()[0])


def _purchase(server: LiveServer, customer: int, amount: float) -> tuple[int, Any]:
    return server.query(PURCHASE, {"customer": encode_id("Customer", customer), "amount": amount})


def test_a_write_that_cannot_get_the_lock_is_busy_and_retryable(servers: tuple[LiveServer, LiveServer]) -> None:
    first, _ = servers
    before = _stored_purchases(first)
    holder = sqlite3.connect(_database_file(first), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the database past the busy timeout
        status, body = _purchase(first, 1, 5.0)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert status == 200, body
    assert body["data"] in (None, {"recordPurchase": None})
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BUSY", error
    assert error["extensions"]["retryable"] is True and error["extensions"]["retryAfter"] > 0
    assert _stored_purchases(first) == before  # nothing of the refused write

    status, body = _purchase(first, 1, 5.0)  # the retry, once the lock is free, goes through
    assert status == 200 and body["data"]["recordPurchase"]["purchase"] == {"amount": "5.00"}, body
    assert _stored_purchases(first) == before + 1
    assert "Traceback" not in first.log()


def test_concurrent_purchases_through_two_servers_are_stored_once_or_busy(
    servers: tuple[LiveServer, LiveServer],
) -> None:
    before = _stored_purchases(servers[0])

    def one(index: int) -> str:
        status, body = _purchase(servers[index % 2], 1 + index % 10, 1.0)
        assert status == 200, body
        if body.get("errors"):
            [error] = body["errors"]
            return str(error["extensions"]["code"])
        assert body["data"]["recordPurchase"]["userErrors"] == [], body
        return "ok"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(one, range(80)))
    assert set(outcomes) <= {"ok", "BUSY"}, outcomes
    assert _stored_purchases(servers[0]) == before + outcomes.count("ok")
