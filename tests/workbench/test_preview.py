"""The preview screen (workbench/static/preview.js, matrix.js, charts.js) in a real chromium against
`segmenta serve` on the demo data: preview edited rules, read the move matrix and open a cell,
explain one of its customers, then save, activate and apply and follow the run to SUCCEEDED."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from playwright.sync_api import Page

from tests.live_server import LiveServer
from tests.workbench.conftest import NARROW, shot
from tests.workbench.views import EDITED, api, fits, hand_over, module

# Runs come back RUNNING at once: the page must follow them (evaluationRunProgress) to their end.
SERVER_ENV = {"SEGMENTA_RUN_WAIT": "0"}
PREVIEW = """mutation($source: String!) { previewRuleset(source: $source) { run { id } } }"""
SUMMARY = """query($id: ID!) {
  evaluationRun(id: $id) {
    status summary { changed moves { fromKey toKey count } ruleHits { label count } tagChanges { key added removed } }
  }
}"""


def expected(server: LiveServer) -> dict:
    """The summary of a preview of the edited rules, once its run has finished."""
    run_id = api(server, PREVIEW, {"source": EDITED})["previewRuleset"]["run"]["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = api(server, SUMMARY, {"id": run_id})["evaluationRun"]
        if run["status"] != "RUNNING":
            assert run["status"] == "SUCCEEDED", run
            return run["summary"]
        time.sleep(0.1)
    raise AssertionError("the preview did not finish")


def test_matrix_arithmetic(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/workbench")
    moves = [
        {"fromKey": "a", "toKey": "b", "count": 5},
        {"fromKey": None, "toKey": "a", "count": 2},
        {"fromKey": "b", "toKey": None, "count": 1},
        {"fromKey": "c", "toKey": "b", "count": 3},
    ]
    matrix = module(page, "matrix.js", f"""(() => {{
        const x = m.moveMatrix({json.dumps(moves)}, ["b", "a"]);
        return {{rows: x.rows, columns: x.columns, ab: x.count("a", "b"), na: x.count(null, "a"), ba: x.count("b", "a"),
                 rowTotals: x.rowTotals, columnTotals: x.columnTotals, total: x.total, max: x.max}};
    }})()""")
    assert matrix == {
        "rows": ["b", "a", "c", None], "columns": ["b", "a", None], "ab": 5, "na": 2, "ba": 0,
        "rowTotals": [1, 5, 3, 2], "columnTotals": [8, 2, 1], "total": 11, "max": 5,
    }
    sizes = module(page, "matrix.js", """m.teamSizes(
        [{teamKey: "a", count: 10}, {teamKey: "b", count: 8}],
        [{fromKey: "a", toKey: "b", count: 5}, {fromKey: null, toKey: "a", count: 2}, {fromKey: "c", toKey: "b", count: 3}],
        ["b", "a", "idle"])""")
    # before = after - joined + left; c empties, "idle" never had anyone and is left out.
    assert sizes == [{"key": "b", "before": 0, "after": 8}, {"key": "a", "before": 13, "after": 10}, {"key": "c", "before": 3, "after": 0}]
    capacity = module(page, "matrix.js", """[
        m.teamCapacity([{employee: {capacity: 100, active: true}}, {employee: {capacity: 50, active: true}}, {employee: {capacity: 70, active: false}}]),
        m.teamCapacity([{employee: {capacity: 100, active: true}}, {employee: {capacity: null, active: true}}]),
        m.teamCapacity([{employee: {capacity: 100, active: false}}]),
        [0, 1, 2, 5, 10].map(n => m.heatLevel(n, 10)),
    ]""")
    assert capacity == [
        {"capacity": 150, "limited": 150, "unlimited": 0, "active": 2},
        {"capacity": None, "limited": 100, "unlimited": 1, "active": 2},
        {"capacity": None, "limited": 0, "unlimited": 0, "active": 0},
        [0, 1, 1, 3, 5],
    ]


def test_preview_the_edited_rules_and_open_a_cell_of_the_move_matrix(
    page: Page, server: LiveServer, sign_in: Callable[..., None]
) -> None:
    want = expected(server)
    moved = sum(move["count"] for move in want["moves"])
    assert moved > 0
    sign_in(page, "admin", "#/editor")
    hand_over(page, EDITED)
    page.goto(f"{server.url}/workbench#/preview")
    page.wait_for_selector("text=the edited rule file from the editor")
    # The keyboard alone: focus the button and press Enter.
    page.focus("#run-preview")
    page.keyboard.press("Enter")
    page.wait_for_selector(".matrix button.cell")
    assert "run=" in page.url
    cells = page.eval_on_selector_all(".matrix button.cell", "bs => bs.map(b => [b.dataset.from, b.dataset.to, b.textContent])")
    assert sorted((f or None, t or None, int(n.replace(",", ""))) for f, t, n in cells) == sorted(
        (m["fromKey"], m["toKey"], m["count"]) for m in want["moves"]
    )
    stats = page.inner_text(".preview-result .stats")
    assert f"{moved}\nchange team" in stats
    # A rule that hits nothing stands out, in the chart and in its table view.
    idle = [hit["label"] for hit in want["ruleHits"] if hit["count"] == 0]
    assert idle == ["standard"]
    flagged = page.eval_on_selector_all(".rule-hits svg text.label.flagged", "ts => ts.map(t => t.firstChild.textContent)")
    assert flagged == ["standard"]
    page.click(".rule-hits .chart-toggle")
    assert "hits nothing" in page.inner_text(".rule-hits table")
    # Tags gained: the diverging chart's table holds the same numbers as the API.
    tag = next(item for item in want["tagChanges"] if item["key"] == "moved_north")
    labels = page.locator("figure", has_text="Segments and tags gained and lost")
    labels.locator(".chart-toggle").click()
    assert f"tag moved_north\t{tag['removed']}\t{tag['added']}" in labels.locator("table").inner_text()
    shot(page, "preview")

    # Arrow keys move between the cells; Enter opens one.
    first = page.locator(".matrix button.cell").first
    first.focus()
    if len(cells) > 1:
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowLeft")
    focused = page.evaluate("[document.activeElement.dataset.from, document.activeElement.dataset.to, document.activeElement.textContent]")
    page.keyboard.press("Enter")
    page.wait_for_selector(".cell-panel li")
    count = int(focused[2].replace(",", ""))
    assert f": {count} customers" in page.inner_text("#cell-heading")
    assert page.evaluate("document.activeElement.id") == "cell-heading"
    listed = page.locator(".cell-panel li").count()
    while page.is_visible(".cell-panel button:has-text('More customers')"):
        page.click(".cell-panel button:has-text('More customers')")
        page.locator(".cell-panel li").nth(listed).wait_for()
        listed = page.locator(".cell-panel li").count()
    assert listed == count
    shot(page, "preview-cell")

    code = page.inner_text(".cell-panel li .code >> nth=0")
    page.click(".cell-panel .explain-link >> nth=0")
    page.wait_for_selector("#explained")
    assert page.inner_text("#explained").startswith(code)
    assert "rules=edited" in page.url
    assert page.input_value("#explain-rules") == "edited"
    assert "would move" in page.inner_text(".facts")


def test_apply_states_how_many_move_and_follows_the_run_to_succeeded(
    page: Page, server: LiveServer, sign_in: Callable[..., None]
) -> None:
    want = expected(server)
    moved = sum(move["count"] for move in want["moves"])
    sign_in(page, "admin", "#/editor")
    hand_over(page, EDITED)
    page.goto(f"{server.url}/workbench#/preview?auto=1")
    page.wait_for_selector(".matrix button.cell")
    page.fill("#rollout-name", "workbench test")
    page.click("#rollout-apply")
    page.wait_for_selector("dialog.confirm[open]")
    assert f"{moved} customers will move to another team" in page.inner_text("dialog.confirm .confirm-text")
    assert page.evaluate("document.activeElement.textContent") == "Cancel"
    page.keyboard.press("Escape")  # a dialog closes with Escape, and nothing happens
    page.wait_for_selector("dialog.confirm[open]", state="detached")
    assert api(server, "{ activeRuleset { name } }")["activeRuleset"]["name"] != "workbench test"

    page.click("#rollout-apply")
    page.click("dialog.confirm .confirm-apply")
    page.wait_for_selector("#apply-progress[data-status=SUCCEEDED]")
    text = page.inner_text("#apply-progress")
    assert "Apply SUCCEEDED" in text and f"{moved} moved team" in text
    # applyRuleset answered RUNNING: SUCCEEDED came through the subscription.
    assert page.get_attribute("#apply-progress", "data-started") == "RUNNING"
    assert page.is_disabled("#rollout-apply")
    shot(page, "preview-applied")

    active = api(server, "{ activeRuleset { name source } evaluationRuns(first: 1) { nodes { id mode status } } }")
    assert active["activeRuleset"] == {"name": "workbench test", "source": EDITED}
    run = active["evaluationRuns"]["nodes"][0]
    assert (run["mode"], run["status"]) == ("APPLY", "SUCCEEDED")
    assert page.get_attribute("#apply-progress", "data-run") == run["id"]
    # Applied: previewing the same rules again finds nothing to move.
    assert expected(server)["moves"] == []


def test_only_a_role_that_may_manage_rules_gets_the_buttons(
    page: Page, server: LiveServer, sign_in: Callable[..., None]
) -> None:
    page.set_viewport_size(NARROW)
    sign_in(page, "viewer", "#/preview")
    page.wait_for_selector(".preview-result h3")  # a viewer is shown the latest run
    assert page.is_disabled("#run-preview") and page.is_disabled("#rollout-apply")
    assert "may not preview" in page.inner_text(".rules-origin")
    fits(page)
    shot(page, "preview-viewer")

    page.click("#sign-out")
    sign_in(page, "manager", "#/editor")
    hand_over(page, EDITED.replace("tag moved_north", "tag moved_again"))
    page.goto(f"{server.url}/workbench#/preview")
    page.click("#run-preview")
    page.wait_for_selector(".preview-result .stats")
    assert page.is_disabled("#rollout-apply")
    assert "need a role that may manage rules" in page.inner_text(".rollout-note")
    fits(page)
    shot(page, "preview")
