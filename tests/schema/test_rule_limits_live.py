"""Hostile rule text against the real `segmenta serve` process (SQLite file).

The depth limit exists for the served stack and SQLite's parser, so it is proven
where they are: the deepest rule file and `where` condition allowed run in the
served process, one level more is a located diagnostic, a 400-segment chain is
one, and a fifteen-star `like` answers at once.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import pytest

from segmenta.dsl.extent import MAX_DEPTH
from tests.dsl.test_like import PATHOLOGICAL
from tests.dsl.test_segment_limits import alternating, chain
from tests.live_server import LiveServer
from tests.schema.helpers import global_id

CHECK = "query($s: String!) { checkRules(source: $s) { ok diagnostics { code line column } } }"
WHERE = "query($w: String!) { customers(first: 1, where: $w) { totalCount } }"
PREVIEW = """mutation($s: String) { previewRuleset(source: $s) {
  run { id status summary { evaluated } } userErrors { message code } } }"""
RUN = "query($id: ID!) { evaluationRun(id: $id) { id status summary { evaluated } } }"
EXPLAIN = "query($id: ID!, $s: String) { explain(customerId: $id, source: $s) { team { key } rules { matched } } }"
CUSTOMERS = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer.start(tmp_path_factory.mktemp("rule-limits"), customers=CUSTOMERS, roles=("admin", "viewer"))
    yield live
    live.stop()


def _data(server: LiveServer, query: str, variables: dict[str, object], role: str = "admin") -> dict:
    status, body = server.query(query, variables, role=role)
    assert status == 200 and "errors" not in body, body
    return body["data"]


def _team_keys(server: LiveServer) -> list[str]:
    return [team["key"] for team in _data(server, "{ teams { key } }", {})["teams"]]


def test_where_at_the_depth_limit_runs_and_one_more_is_a_diagnostic(server: LiveServer) -> None:
    deepest = _data(server, WHERE, {"w": alternating(MAX_DEPTH)}, role="viewer")
    assert deepest["customers"]["totalCount"] >= 0
    status, body = server.query(WHERE, {"w": alternating(MAX_DEPTH + 1)}, role="viewer")
    assert status == 200
    [error] = body["errors"]
    assert error["extensions"]["code"] == "INVALID_CONDITION"
    assert [d["code"] for d in error["extensions"]["diagnostics"]] == ["too-deep"]


def test_the_deepest_rule_file_allowed_previews_in_the_served_process(server: LiveServer) -> None:
    first, second = _team_keys(server)[:2]
    segments = (MAX_DEPTH - 2) // 3 + 1
    source = chain(segments, "not (s{previous} and region != x{i})").replace("-> team a,", f"-> team {first},")
    deepest = alternating(MAX_DEPTH)
    source += f"w: {deepest} -> tag w\nv: {deepest} -> team {second}\notherwise -> team {first}, tag z\n"
    checked = _data(server, CHECK, {"s": source})["checkRules"]
    assert checked["ok"] is True and "too-deep" not in {d["code"] for d in checked["diagnostics"]}
    payload = _data(server, PREVIEW, {"s": source})["previewRuleset"]
    assert payload["userErrors"] == []
    run = payload["run"]
    deadline = time.monotonic() + 60
    while run["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.5)
        run = _data(server, RUN, {"id": payload["run"]["id"]})["evaluationRun"]
    assert run["status"] == "SUCCEEDED", server.log()[-3000:]
    assert run["summary"]["evaluated"] == CUSTOMERS


def test_check_rules_reports_a_chain_of_400_segments(server: LiveServer) -> None:
    source = chain(400).replace("-> team a,", f"-> team {_team_keys(server)[0]},")
    result = _data(server, CHECK, {"s": source})["checkRules"]
    assert result == {"ok": False, "diagnostics": [{"code": "too-deep", "line": MAX_DEPTH + 1, "column": 15}]}
    assert "RecursionError" not in server.log()


def test_explain_with_fifteen_stars_answers_at_once(server: LiveServer) -> None:
    path = server.database_url.split("///", 1)[1]
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE customers SET name = ? WHERE code = (SELECT min(code) FROM customers)", ("a" * 200,))
        key = connection.execute("SELECT id FROM customers WHERE name = ?", ("a" * 200,)).fetchone()[0]
    customer = global_id("Customer", key)
    team = _team_keys(server)[0]
    source = f'slow: name like "{PATHOLOGICAL}" -> team {team}\n'
    started = time.monotonic()
    explained = _data(server, EXPLAIN, {"id": customer, "s": source}, role="viewer")["explain"]
    assert time.monotonic() - started < 10  # minutes with the backtracking matcher
    assert explained["team"] is None and explained["rules"] == [{"matched": False}]
