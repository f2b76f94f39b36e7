"""Data limits against the real `segmenta serve` process and the real `segmenta export/import`.

What an attacker's probe found: two purchases of 1.7e308 made `total_spent` infinite and broke
`stats` for everybody; a purchase in the year 1 at +14:00 crashed the request; a customer named
like a formula was exported as a live formula.  One seeded server for the module.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal

import pytest

from tests.live_server import LiveServer, segmenta

PURCHASE = """mutation($input: PurchaseInput!) {
  recordPurchase(input: $input) { purchase { amount } userErrors { field code } } }"""
CREATE = """mutation($input: CustomerInput!) {
  createCustomer(input: $input) { customer { id } userErrors { field code } } }"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer.start(tmp_path_factory.mktemp("data-limits"), customers=20)
    yield live
    live.stop()


def _a_customer_id(server: LiveServer) -> str:
    status, body = server.query("{ customers(first: 1) { nodes { id } } }")
    assert status == 200, body
    return body["data"]["customers"]["nodes"][0]["id"]


def test_overflowing_purchases_are_refused_and_stats_keep_working(server: LiveServer) -> None:
    customer = _a_customer_id(server)
    for _ in range(2):
        status, body = server.query(PURCHASE, {"input": {"customerId": customer, "amount": 1.7e308}})
        assert status == 200 and "errors" not in body, body
        assert body["data"]["recordPurchase"]["userErrors"] == [{"field": "input.amount", "code": "OUT_OF_RANGE"}]
    status, body = server.query(
        PURCHASE, {"input": {"customerId": customer, "amount": 1, "purchasedAt": "0001-01-01T00:00:00+14:00"}}
    )
    assert body["data"]["recordPurchase"]["userErrors"] == [{"field": "input.purchasedAt", "code": "OUT_OF_RANGE"}]
    status, body = server.query(
        "{ stats { customerCount } customers(first: 3, orderBy: TOTAL_SPENT_DESC) { nodes { metrics { totalSpent } } } }"
    )
    assert status == 200 and "errors" not in body, body
    assert all(Decimal(node["metrics"]["totalSpent"]) < 10**12 for node in body["data"]["customers"]["nodes"])


def test_nul_in_a_mutation_or_a_lookup_is_a_user_error(server: LiveServer) -> None:
    status, body = server.query(CREATE, {"input": {"code": "NUL\u0000", "name": "Nul"}})
    assert status == 200 and body["data"]["createCustomer"]["userErrors"] == [
        {"field": "input.code", "code": "INVALID_TEXT"}
    ], body
    status, body = server.query('query($c: String!) { customerByCode(code: $c) { id } }', {"c": "C\u00001"})
    assert status == 200 and [error["extensions"]["code"] for error in body["errors"]] == ["BAD_USER_INPUT"], body
    assert "Traceback" not in server.log()


def test_export_neutralises_formulas_and_import_round_trips(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> None:
    status, body = server.query(
        CREATE, {"input": {"code": "=1+2", "name": "@SUM(A1)", "city": "-3", "attributes": {"note": "+cmd"}}}
    )
    assert body["data"]["createCustomer"]["userErrors"] == [], body
    exported = segmenta("export", "-", "--database-url", server.database_url)
    rows = {row["code"]: row for row in csv.DictReader(io.StringIO(exported))}
    marked = rows["'=1+2"]
    assert (marked["name"], marked["city"], marked["attr.note"]) == ("'@SUM(A1)", "'-3", "'+cmd")
    raw = {row["code"]: row for row in csv.DictReader(io.StringIO(segmenta("export", "--raw", "--database-url", server.database_url)))}
    assert raw["=1+2"]["name"] == "@SUM(A1)"

    copy = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('copy') / 'copy.db'}"
    path = tmp_path_factory.mktemp("csv") / "customers.csv"
    path.write_text(exported, encoding="utf-8")
    segmenta("import", str(path), "--mode", "strict", "--database-url", copy)
    assert _without_assignment(segmenta("export", "-", "--database-url", copy)) == _without_assignment(exported)


def _without_assignment(exported: str) -> list[dict[str, str]]:
    """The rows without team, manager and assignment_locked, which import leaves to routing."""
    ignored = {"team", "manager", "assignment_locked"}
    return [
        {column: cell for column, cell in row.items() if column not in ignored}
        for row in csv.DictReader(io.StringIO(exported))
    ]
