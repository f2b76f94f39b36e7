"""The explain screen (workbench/static/explain.js) in a real chromium against `segmenta serve` on
the demo data: find a customer by code or name, the deciding rule, every rule's verdict with the
failing comparison and the actual value, and the assignment history."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable

from playwright.sync_api import Page

from tests.live_server import LiveServer
from tests.workbench.conftest import NARROW, shot
from tests.workbench.views import EDITED, api, fits, hand_over, module

EXPLAIN = """query($id: ID!) {
  explain(customerId: $id) { decidingRule ruleTeamKey rules { label matched detail decided } customer { code name assignmentHistory { cause } } }
}"""


def test_verdicts_split_into_comparisons(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/workbench")
    parsed = module(page, "matrix.js", """[
        m.parseDetail("size >= large ✗ (size is medium); region in (east, 华东) ✓ (region is east)"),
        m.parseDetail("high_value ✗ (segment high_value: total_spent >= 100k ✗ (total_spent is 5.00); purchase_count >= 20 ✗ (purchase_count is 1))"),
        m.parseDetail("otherwise: the team was already decided by east"),
        m.parseDetail(""),
    ]""")
    assert parsed == [
        [
            {"text": "size >= large", "holds": False, "actual": "size is medium"},
            {"text": "region in (east, 华东)", "holds": True, "actual": "region is east"},
        ],
        [{
            "text": "high_value",
            "holds": False,
            "actual": "segment high_value: total_spent >= 100k ✗ (total_spent is 5.00); purchase_count >= 20 ✗ (purchase_count is 1)",
        }],
        [{"text": "otherwise: the team was already decided by east", "holds": None, "actual": ""}],
        [],
    ]


def test_explain_a_customer_found_by_code(page: Page, server: LiveServer, sign_in: Callable[..., None]) -> None:
    customer = api(server, '{ customerByCode(code: "C00002") { id code name } }')["customerByCode"]
    want = api(server, EXPLAIN, {"id": customer["id"]})["explain"]
    sign_in(page, "viewer", "#/explain")
    page.fill("#explain-search", "C00002")
    page.keyboard.press("Enter")
    page.wait_for_selector("#explained")
    assert page.inner_text("#explained") == f"C00002 · {customer['name']}"
    assert page.evaluate("document.activeElement.id") == "explained"
    assert urllib.parse.quote(customer["id"]) in page.url
    deciding = page.inner_text(".facts .deciding")
    assert f"“{want['decidingRule']}”" in deciding and want["ruleTeamKey"] in deciding
    rows = page.locator(".rules-table tbody tr")
    assert rows.count() == len(want["rules"])
    assert page.locator(".rules-table tr.decided").count() == 1
    assert want["decidingRule"] in page.inner_text(".rules-table tr.decided th")
    # A rule that failed shows the comparison that failed and the customer's actual value.
    failed = next(rule for rule in want["rules"] if rule["detail"].count("✗") == 1 and ";" not in rule["detail"])
    comparison, actual = failed["detail"].rsplit(" ✗ (", 1)
    reason = page.locator(".rules-table tbody tr", has_text=failed["label"]).first.locator(".reasons li.fails")
    assert reason.locator("code").inner_text() == comparison
    assert actual[:-1] in reason.inner_text()
    history = page.locator(".history-table tbody tr")
    assert history.count() == len(want["customer"]["assignmentHistory"]) > 0
    shot(page, "explain")


def test_search_by_name_then_choose_with_the_keyboard(page: Page, server: LiveServer, sign_in: Callable[..., None]) -> None:
    page.set_viewport_size(NARROW)
    found = api(server, '{ customers(filter: {search: "llc"}, first: 20, orderBy: CODE_ASC) { totalCount nodes { code } } }')["customers"]
    assert found["totalCount"] > 1
    sign_in(page, "admin", "#/explain")
    page.fill("#explain-search", "LLC")
    page.keyboard.press("Enter")
    page.wait_for_selector(".search-results button.pick")
    assert page.locator(".search-results button.pick").count() == len(found["nodes"])
    # The first match has the focus: Tab to the second and press Enter.
    assert found["nodes"][0]["code"] in page.evaluate("document.activeElement.textContent")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#explained")
    assert page.inner_text("#explained").startswith(found["nodes"][1]["code"])
    fits(page)
    shot(page, "explain")

    page.fill("#explain-search", "no such customer anywhere")
    page.keyboard.press("Enter")
    page.wait_for_selector(".search-results >> text=No customer's code or name contains")


def test_edited_rules_with_an_error_say_where(page: Page, server: LiveServer, sign_in: Callable[..., None]) -> None:
    customer = api(server, '{ customerByCode(code: "C00003") { id } }')["customerByCode"]
    sign_in(page, "admin", "#/editor")
    hand_over(page, EDITED + "broken: regoin = east -> team north_region\n")
    page.goto(f"{server.url}/workbench#/explain?customer={customer['id']}&rules=edited")
    page.wait_for_selector(".explanation .error-box")
    text = page.inner_text(".explanation .error-box")
    assert f"line {EDITED.count(chr(10)) + 1}, column 9: unknown field `regoin`" in text
    page.select_option("#explain-rules", "")
    page.wait_for_selector("#explained")
    assert "the active ruleset" in page.inner_text(".facts")
