"""The workbench's editor (workbench/static/editor.js) in headless chromium against `segmenta serve`
on the demo data: the role's limits, diagnostics as you type at their line and column, completion,
field help, format, save and the side-by-side diff of two saved versions; and the page's pure
logic (diff.js, completion.js) unit-tested inside the same browser by importing the modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page

from tests.live_server import LiveServer
from tests.workbench.conftest import NARROW, shot

EDITOR = "#source"


def _module(page: Page, name: str, body: str) -> Any:
    """Run `body` (an async function body with the module as `m`) in the page; returns its value."""
    return page.evaluate(f"async () => {{ const m = await import('/workbench/static/{name}'); {body} }}")


def _open_editor(page: Page, sign_in: Callable[..., None], role: str = "admin") -> None:
    sign_in(page, role, "#/editor")
    page.wait_for_function("() => document.querySelector('#source') && document.querySelector('#source').value.length > 0")
    # The catalogue has arrived once a field's help can be shown.
    page.wait_for_function("() => document.querySelector('#problem-count').textContent.length > 0")


def _set_text(page: Page, text: str) -> None:
    page.fill(EDITOR, text)


def _value(page: Page) -> str:
    return str(page.input_value(EDITOR))


def test_diff_module_finds_a_shortest_script_and_pairs_changed_lines(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/workbench")
    result = _module(page, "diff.js", """
      const rows = m.sideBySide("a\\nb\\nc\\n", "a\\nB\\nc\\nd\\n");
      // Against a brute-force longest common subsequence on many random pairs: the script is minimal
      // and rebuilds both sides.
      const lcs = (a, b) => { const t = Array.from({length: a.length + 1}, () => new Array(b.length + 1).fill(0));
        for (let i = a.length - 1; i >= 0; i--) for (let j = b.length - 1; j >= 0; j--)
          t[i][j] = a[i] === b[j] ? t[i + 1][j + 1] + 1 : Math.max(t[i + 1][j], t[i][j + 1]);
        return t[0][0]; };
      let seed = 7; const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
      const bad = [];
      for (let n = 0; n < 400; n++) {
        const make = () => Array.from({length: Math.floor(random() * 10)}, () => "xyz"[Math.floor(random() * 3)]);
        const a = make(), b = make(), ops = m.diffLines(a, b);
        const left = ops.filter(o => o.op !== "insert").map(o => a[o.a]).join("");
        const right = ops.filter(o => o.op !== "delete").map(o => b[o.b]).join("");
        const kept = ops.filter(o => o.op === "equal").length;
        if (left !== a.join("") || right !== b.join("") || kept !== lcs(a, b)) bad.push([a.join(""), b.join("")]);
      }
      const big = Array.from({length: 20000}, (_, i) => "line " + i);
      const edited = big.slice(); edited[500] = "changed"; edited.splice(9000, 3);
      const large = m.sideBySide(big.join("\\n"), edited.join("\\n")).stats;
      return { rows, bad, large, empty: m.sideBySide("", "").rows.length, lines: m.splitLines("x\\r\\ny\\n"),
               inline: m.inlineChanges("size >= large", "size >= medium"),
               words: m.inlineChanges("size >= large", "size >= enterprise") };
    """)
    assert result["rows"]["stats"] == {"same": 2, "removed": 0, "added": 1, "changed": 1}
    assert [row["kind"] for row in result["rows"]["rows"]] == ["same", "changed", "same", "added"]
    assert result["rows"]["rows"][3] == {"kind": "added", "left": None, "right": {"number": 4, "text": "d"}}
    assert result["bad"] == []
    assert result["large"] == {"same": 19996, "removed": 3, "added": 0, "changed": 1}
    assert result["empty"] == 0 and result["lines"] == ["x", "y"]
    assert result["inline"] == {
        "left": [{"text": "size >= ", "changed": False}, {"text": "large", "changed": True}],
        "right": [{"text": "size >= ", "changed": False}, {"text": "medium", "changed": True}],
    }
    # Widened to whole words, though "large" and "enterprise" share their last letter.
    assert [part["text"] for part in result["words"]["right"]] == ["size >= ", "enterprise"]


def test_completion_module_offers_what_fits_where_the_cursor_is(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/workbench")
    result = _module(page, "completion.js", """
      const field = (name, kind, operators, values = [], knownValues = []) =>
        [name, { name, kind, operators, values, knownValues, unit: null }];
      const fields = new Map([
        field("region", "TEXT", ["=", "!=", "in", "not in", "like", "is missing", "is present"], [], ["east", "New York", "华东"]),
        field("size", "ORDERED", ["=", "<", ">=", "in", "between"], ["small", "medium", "large", "enterprise"]),
        field("tags", "SET", ["contains"], [], ["vip"]),
      ]);
      const catalogue = { fields, teams: [{ key: "senior_sales", name: "Senior sales" }], segments: ["stored"] };
      const at = (text) => { const found = m.suggest(text, text.length, catalogue);
        return found.kind + ":" + found.items.map(item => item.insert).join("|"); };
      return {
        start: at(""), prefix: at("re"), operator: at("region "), typedOperator: at("region i"),
        value: at("region = "), list: at("region in (east, "), between: at("size between small and "),
        ordered: at("size >= l"), afterValue: at("region = east "), action: at("x -> "), team: at("x -> team s"),
        tag: at("x -> tag "), within: at("x -> task call "), days: at("x -> task call within 3 "), segments: at("segment big = size > small\\nbig and g"), quoted: at('region = "ea'),
        naming: at("segment "), presence: at("region is "), notIn: at("size not "),
        replaced: m.suggest("regoin = east", 3, catalogue),
        words: [m.quoteValue("New York"), m.quoteValue("in"), m.quoteValue("华东")],
        word: m.wordAt("x->team", 1),
      };
    """)
    assert result["start"] == "condition:region|size|tags|not|segment |otherwise -> "
    assert result["prefix"] == "condition:region"
    assert result["operator"] == "operator:=|!=|in|not in|like|is missing|is present"
    assert result["typedOperator"] == "operator:in|is missing|is present|not in|like"
    assert result["value"] == 'value:east|"New York"|华东'
    assert result["list"] == 'value:east|"New York"|华东'
    assert result["between"] == "value:small|medium|large|enterprise"
    assert result["ordered"] == "value:large|small"
    assert result["afterValue"] == "continue:and|or|-> "
    assert result["action"] == "action:team |tag |segment |task "
    assert result["within"] == "within:within " and result["days"] == "days:days"
    assert result["team"] == "team:senior_sales"
    assert result["tag"] == "tag:vip"
    # A condition may use the segments defined above it (not stored ones, which only actions add to).
    assert result["segments"] == "condition:region|tags|big"
    assert result["quoted"] == "none:" and result["naming"] == "none:"
    assert result["presence"] == "presence:missing|present" and result["notIn"] == "operator:in"
    assert (result["replaced"]["from"], result["replaced"]["to"]) == (0, 6)
    assert result["words"] == ['"New York"', '"in"', "华东"]
    assert result["word"] == {"word": "x", "from": 0, "to": 1}


def test_a_viewer_may_edit_and_check_but_not_save(page: Page, sign_in: Callable[..., None]) -> None:
    _open_editor(page, sign_in, "viewer")
    assert page.is_disabled("#save")
    assert "Saving needs an admin (you are a viewer)" in page.inner_text("#save-note")
    _set_text(page, "regoin = east -> team east_region\n")
    page.wait_for_selector("#problems .problem.error")


def test_a_misspelt_field_is_underlined_at_its_line_and_listed_with_its_hint(
    page: Page, sign_in: Callable[..., None]
) -> None:
    _open_editor(page, sign_in)
    _set_text(page, "segment big = size >= large\n\nbig and regoin = east -> team east_region\notherwise -> team general_pool\n")
    problem = page.wait_for_selector("#problems .problem.error:has-text('regoin')")
    text = problem.inner_text()
    assert "Line 3, column 9" in text and "unknown field `regoin`" in text and "did you mean `region`?" in text
    underline = page.locator(".squiggle.error")
    assert underline.count() == 1
    assert (underline.get_attribute("data-line"), underline.get_attribute("data-column")) == ("3", "9")
    assert underline.inner_text() == "regoin"
    assert page.locator(".line-number.has-error").all_inner_texts() == ["3"]
    # Jumping to the problem selects the misspelt word and says what is wrong there.
    problem.click()
    selected = page.evaluate("(() => { const t = document.querySelector('#source'); return t.value.slice(t.selectionStart, t.selectionEnd); })()")
    assert selected == "regoin"
    assert page.evaluate("document.activeElement.id") == "source"
    assert "did you mean `region`?" in page.inner_text("#field-info")
    shot(page, "editor-diagnostics")
    # Fixing it clears the problem.
    _set_text(page, _value(page).replace("regoin", "region"))
    page.wait_for_selector("#problems .no-problems")
    assert page.locator(".squiggle.error").count() == 0


def test_completion_while_typing_and_on_ctrl_space(page: Page, sign_in: Callable[..., None]) -> None:
    _open_editor(page, sign_in)
    _set_text(page, "")
    page.focus(EDITOR)
    page.keyboard.type("regi")
    page.wait_for_selector("#completion:not([hidden]) [role=option][aria-selected=true]:has-text('region')")
    assert page.get_attribute(EDITOR, "aria-expanded") == "true"
    page.keyboard.press("Enter")
    assert _value(page) == "region"
    page.keyboard.type(" = ")
    # Values seen in the demo data, offered after the operator.
    page.wait_for_selector("#completion:not([hidden]) [role=option]:has-text('east')")
    page.keyboard.type("華")  # nothing starts with it: the list closes
    page.keyboard.press("Backspace")
    page.keyboard.press("Control+Space")
    options = page.locator("#completion [role=option] .label").all_inner_texts()
    assert "east" in options and "north" in options
    index = options.index("east")
    for _ in range(index):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Tab")
    assert _value(page) == "region = east"
    page.keyboard.type(" -> ")
    page.wait_for_selector("#completion:not([hidden]) [role=option]:has-text('team')")
    page.keyboard.press("Enter")  # `team ` goes straight on to the team keys
    page.wait_for_selector("#completion:not([hidden]) [role=option]:has-text('east_region')")
    page.set_viewport_size(NARROW)
    shot(page, "editor-completion")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= NARROW["width"], f"the editor scrolls sideways at 390 px ({width} px wide)"
    page.keyboard.type("east_r")
    page.keyboard.press("Enter")
    assert _value(page) == "region = east -> team east_region"
    page.keyboard.press("Escape")
    assert page.is_hidden("#completion")
    # Field help for the keyboard: the caret on a field says what it means and its unit.
    _set_text(page, "days_since_purchase > 90 -> team east_region\n")
    page.focus(EDITOR)
    page.keyboard.press("Control+Home")
    page.keyboard.press("ArrowRight")
    page.wait_for_selector("#field-info:has-text('days_since_purchase (number, in days)')")


def test_hovering_a_field_shows_what_it_means_and_its_unit(page: Page, sign_in: Callable[..., None]) -> None:
    _open_editor(page, sign_in)
    _set_text(page, "total_spent >= 10k -> team east_region\n")
    box = page.locator(EDITOR).bounding_box()
    assert box is not None
    char = page.evaluate("(() => { const s = document.createElement('span'); s.className = 'probe';"
                         " s.textContent = '0'.repeat(100); document.querySelector('.overlay-text').append(s);"
                         " const w = s.getBoundingClientRect().width / 100; s.remove(); return w; })()")
    page.mouse.move(box["x"] + 8 + char * 3.5, box["y"] + 8 + 10)
    hover = page.wait_for_selector("#hover:not([hidden])")
    assert "total_spent (number, in money)" in hover.inner_text()
    assert "exact" in hover.inner_text()
    page.mouse.move(box["x"] + box["width"] - 5, box["y"] + box["height"] - 5)
    page.wait_for_selector("#hover", state="hidden")


def test_format_lays_out_the_text_and_refuses_syntax_errors(page: Page, sign_in: Callable[..., None]) -> None:
    _open_editor(page, sign_in)
    _set_text(page, "segment  big=size>=large\nbig->team   senior_sales")
    page.click("#format")
    page.wait_for_function("() => document.querySelector('#source').value === 'segment big = size >= large\\nbig -> team senior_sales\\n'")
    assert "Formatted" in page.inner_text("#status")
    page.keyboard.press("Control+z")  # formatting is one edit: undone in one step
    page.wait_for_function("() => document.querySelector('#source').value === 'segment  big=size>=large\\nbig->team   senior_sales'")
    page.keyboard.press("Control+Shift+z")
    page.keyboard.press("Shift+Alt+F")
    page.wait_for_selector("#status:has-text('Already formatted')")
    _set_text(page, "a: region = -> team x\n")
    page.click("#format")
    page.wait_for_selector("#status:has-text('Cannot format while there are syntax errors: line 1, column 13')")
    assert _value(page) == "a: region = -> team x\n"


def test_save_two_versions_and_diff_them_side_by_side(
    page: Page, server: LiveServer, sign_in: Callable[..., None]
) -> None:
    _open_editor(page, sign_in)
    page.fill("#ruleset-name", "workbench-test")
    _set_text(page, "segment big = size >= large\nbig -> team senior_sales\notherwise -> team general_pool\n")
    page.click("#save")
    page.wait_for_selector("#status:has-text('Saved “workbench-test” version 1 as a draft.')")
    _set_text(page, "segment big = size >= enterprise\nbig -> team senior_sales\nregion = east -> team east_region\notherwise -> team general_pool\n")
    page.focus(EDITOR)
    page.keyboard.press("Control+s")
    page.wait_for_selector("#status:has-text('Saved “workbench-test” version 2 as a draft.')")
    # The editor's text is shared with the other screens, in this tab's storage.
    assert page.evaluate("sessionStorage.getItem('segmenta.workbench.name')") == "workbench-test"
    versions = server.query('{ rulesets(name: "workbench-test") { id version } }')[1]["data"]["rulesets"]
    ids = {item["version"]: item["id"] for item in versions}
    page.select_option("#diff-from", ids[1])
    page.select_option("#diff-to", ids[2])
    page.click("#compare")
    summary = page.wait_for_selector("#diff-summary").inner_text()
    assert "workbench-test v1" in summary and "workbench-test v2" in summary
    assert "1 changed, 1 added, 0 removed" in summary
    changed = page.locator(".diff-table tr.diff-changed")
    assert changed.count() == 1
    assert changed.locator("td.left mark").inner_text() == "large"
    assert changed.locator("td.right mark").inner_text() == "enterprise"
    added = page.locator(".diff-table tr.diff-added")
    assert added.locator("td.right").inner_text() == "region = east -> team east_region"
    assert added.locator("td.no").nth(1).inner_text() == "3"
    shot(page, "editor-diff")
    # Opening version 1 asks first, since the editor's text was edited after the last save.
    _set_text(page, _value(page) + "# unsaved\n")
    page.click("#open-version")
    assert "Press again" in page.inner_text("#open-version")
    page.click("#open-version")
    page.wait_for_function("() => document.querySelector('#source').value.includes('size >= large')")
    page.set_viewport_size(NARROW)
    page.click("#compare")
    page.wait_for_selector("#diff-summary")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= NARROW["width"], f"the editor scrolls sideways at 390 px ({width} px wide)"
    shot(page, "editor-diff")


def test_a_viewer_cannot_save_even_by_the_api_behind_the_page(server: LiveServer) -> None:
    status, body = server.query(
        'mutation { saveRuleset(name: "x", source: "otherwise -> team general_pool") { userErrors { code } } }', role="viewer"
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
