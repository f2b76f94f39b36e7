"""The dashboards screen (workbench/static/dashboards.js, charts.js) in a real chromium against
`segmenta serve` on the demo data: every panel opens (by click and by arrow keys), every chart has
a table view holding the API's figures, and the runs panel links each run to the preview."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page

from tests.live_server import LiveServer
from tests.workbench.conftest import NARROW, WIDE, shot
from tests.workbench.views import api, fits, module


def test_chart_helpers(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/workbench")
    found = module(page, "charts.js", """[
        [0, 1, 7, 51, 99, 100, 1234, 5000].map(max => m.ticks(max)),
        [0.5, 3, 12.75, 250].map(m.niceStep),
        [m.shorten("abcdef", 4), m.shorten("abc", 4), m.formatNumber(1234567), m.formatNumber(null)],
    ]""")
    assert found == [
        [[0, 1], [0, 1], [0, 2, 4, 6, 8], [0, 20, 40, 60], [0, 50, 100], [0, 50, 100],
         [0, 500, 1000, 1500], [0, 2000, 4000, 6000]],
        [1, 5, 20, 500],
        ["abc…", "abc", "1,234,567", "–"],
    ]
    grouped = module(page, "dashboards.js", """[
        m.inOrder([{value: "LARGE", count: 3}, {value: null, count: 5}, {value: "SMALL", count: 1}], ["SMALL", "MEDIUM", "LARGE"]),
        [m.enumLabel("AT_RISK"), m.enumLabel(null)],
        [[3, 0], [1, 1], [12, 0]].map(([months, back]) => m.periodMonths(months, back, new Date(Date.UTC(2026, 0, 31, 23)))),
    ]""")
    assert grouped == [
        [{"value": "SMALL", "count": 1}, {"value": "MEDIUM", "count": 0}, {"value": "LARGE", "count": 3}, {"value": None, "count": 5}],
        ["at risk", "not recorded"],
        [{"from": "2025-11", "to": "2026-01"}, {"from": "2025-12", "to": "2025-12"}, {"from": "2025-02", "to": "2026-01"}],
    ]


def rows_of(page: Page, title: str) -> dict[str, list[str]]:
    """The table view of the chart titled `title`: first cell → the other cells."""
    figure = page.locator("figure.chart", has_text=title)
    toggle = figure.locator(".chart-toggle")
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    assert figure.locator(".chart-picture").is_hidden()
    cells = figure.locator("tbody tr").evaluate_all(
        "rows => rows.map(row => [...row.children].map(cell => cell.textContent))"
    )
    toggle.click()  # and back to the picture
    assert figure.locator("svg[role=img]").is_visible()
    return {row[0]: row[1:] for row in cells}


MANAGERS = """query($from: String!, $to: String!) {
  employees(active: true) { name performance(from: $from, to: $to) { revenue target tasksDue tasksDoneOnTime tasksOverdue } }
  tasks(filter: {overdue: true}, first: 50) { totalCount }
}"""


def managers(page: Page, server: LiveServer) -> None:
    """The managers panel holds the API's figures for the period it shows, and its overdue follow-ups."""
    shown = page.inner_text("#dashboard-panel .row .muted").split(" to ")
    period = {"from": shown[0], "to": shown[-1]}
    data = api(server, MANAGERS, period)
    revenue = rows_of(page, "Revenue against target")
    for employee in data["employees"]:
        figures = employee["performance"]
        if employee["name"] in revenue and [e["name"] for e in data["employees"]].count(employee["name"]) == 1:  # namesakes aside
            assert revenue[employee["name"]][0] == f"{round(float(figures['revenue'])):,}"
    due = rows_of(page, "Follow-ups due")
    expected_due = {e["name"]: e["performance"] for e in data["employees"] if e["performance"]["tasksDue"]}
    assert set(due) == set(expected_due)
    names = [e["name"] for e in data["employees"]]
    for name, cells in due.items():
        if names.count(name) > 1:
            continue  # the demo has namesakes: the table keeps both rows, this dict only one
        assert [int(cells[0]), int(cells[1])] == [expected_due[name]["tasksDoneOnTime"], expected_due[name]["tasksOverdue"]]
    overdue = data["tasks"]["totalCount"]
    assert f"Overdue follow-ups now: {overdue}" in page.inner_text("#dashboard-panel h3")
    assert page.locator(".tasks-table tbody tr").count() == min(overdue, 50)
    # Another period is drawn for it, and the focus stays on the choice.
    page.select_option("#manager-period", "year")
    page.wait_for_selector("#dashboard-panel[data-ready=true] #manager-period")
    assert page.input_value("#manager-period") == "year"
    assert page.evaluate("document.activeElement.id") == "manager-period"


def test_every_dashboard_and_its_table_view(page: Page, server: LiveServer, sign_in: Callable[..., None]) -> None:
    data = api(server, """{
      stats { customerCount byTeam { team { name } count } byRegion { value count } bySize { value count } byLifecycle { value count } }
      segments { name size }
      teams { name stats { customerCount } }
      evaluationRuns(first: 100) { totalCount nodes { id summary { changed } } }
    }""")
    for size in (WIDE, NARROW):
        page.set_viewport_size(size)
        sign_in(page, "viewer", "#/dashboards")
        page.wait_for_selector("#dashboard-panel[data-ready=true][data-panel=customers]")
        assert page.locator("#dashboard-panel figure.chart").count() == 5
        assert f"{data['stats']['customerCount']}\ncustomers" in page.inner_text("#dashboard-panel .stats")
        by_team = rows_of(page, "Customers by team")
        assert by_team == {group["team"]["name"]: [str(group["count"])] for group in data["stats"]["byTeam"]}
        by_region = rows_of(page, "Customers by region")
        assert {key: int(value[0]) for key, value in by_region.items()} == {
            group["value"] or "not recorded": group["count"] for group in data["stats"]["byRegion"]
        }
        by_size = rows_of(page, "Customers by size")
        assert list(by_size)[:4] == ["small", "medium", "large", "enterprise"]
        assert sum(int(value[0]) for value in by_size.values()) == data["stats"]["customerCount"]
        assert sum(int(value[0]) for value in rows_of(page, "Customers by lifecycle").values()) == data["stats"]["customerCount"]
        assert len(rows_of(page, "Customers by segment")) == len(data["segments"])
        fits(page)
        shot(page, "dashboards-customers")

        # The arrow keys move between the tabs and open each panel.
        page.focus("#tab-customers")
        page.keyboard.press("ArrowRight")
        page.wait_for_selector("#dashboard-panel[data-ready=true][data-panel=teams]")
        assert page.evaluate("document.activeElement.id") == "tab-teams"
        assert page.get_attribute("#tab-teams", "aria-selected") == "true"
        load = rows_of(page, "Team load against capacity")
        assert {name: int(cells[0]) for name, cells in load.items()} == {team["name"]: team["stats"]["customerCount"] for team in data["teams"]}
        assert all(cells[1] for cells in load.values())  # every team's capacity is said, "unlimited" included
        assert rows_of(page, "Account managers' load against capacity")
        fits(page)
        shot(page, "dashboards-teams")

        page.focus("#tab-teams")
        page.keyboard.press("ArrowRight")
        page.wait_for_selector("#dashboard-panel[data-ready=true][data-panel=managers]")
        managers(page, server)
        fits(page)
        shot(page, "dashboards-managers")

        page.focus("#tab-managers")
        page.keyboard.press("ArrowRight")
        page.wait_for_selector("#dashboard-panel[data-ready=true][data-panel=runs]")
        runs = rows_of(page, "Changes per run over time")
        assert [int(cells[0]) for cells in runs.values()] == [run["summary"]["changed"] for run in reversed(data["evaluationRuns"]["nodes"])]
        assert "dashboards?panel=runs" in page.url
        fits(page)
        shot(page, "dashboards-runs")
        page.focus("#tab-teams")
        page.keyboard.press("End")
        assert page.evaluate("document.activeElement.id") == "tab-runs"
        page.keyboard.press("Home")
        page.wait_for_selector("#dashboard-panel[data-ready=true][data-panel=customers]")
        page.click("#sign-out")

    # A run of the list opens in the preview screen.
    sign_in(page, "viewer", "#/dashboards?panel=runs")
    page.click(".run-list a >> nth=0")
    page.wait_for_selector(".preview-result .stats")
    assert data["evaluationRuns"]["nodes"][0]["id"].rstrip("=") in page.url.replace("%3D", "=")
