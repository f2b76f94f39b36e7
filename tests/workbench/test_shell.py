"""The workbench shell (workbench/routes.py, static/app.js and api.js): its files are served safely,
sign-in keeps the token for the tab, each role is shown its limits, and the hash routes work with
the keyboard at 1280 and 390 pixels wide."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page

from segmenta.workbench.routes import static_file
from tests.live_server import LiveServer
from tests.workbench.conftest import NARROW, shot


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_the_page_and_its_files_are_served_with_their_types(server: LiveServer) -> None:
    status, headers, body = _get(f"{server.url}/workbench")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert headers["cache-control"] == "no-cache"
    assert "script-src 'self'" in headers["content-security-policy"]
    assert b"/workbench/static/app.js" in body
    for name, media_type in (("app.js", "text/javascript"), ("api.js", "text/javascript"), ("app.css", "text/css")):
        status, headers, body = _get(f"{server.url}/workbench/static/{name}")
        assert status == 200 and headers["content-type"].startswith(media_type), name
        assert "max-age" in headers["cache-control"] and headers.get("etag")
        assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("name", ["..%2Froutes.py", "%2E%2E%2F__init__.py", "routes.py", ".hidden.js", "missing.js", "app.js.bak"])
def test_nothing_but_the_static_files_is_served(server: LiveServer, name: str) -> None:
    status, _, body = _get(f"{server.url}/workbench/static/{name}")
    assert status == 404
    assert b"import" not in body


def test_the_page_is_only_its_own_files_nothing_from_elsewhere() -> None:
    """Works offline and copies in no third-party code: every file is one of ours, refers to no other
    host (the SVG namespace is a name, not an address), and imports only its neighbours."""
    static = Path(__file__).resolve().parents[2] / "workbench" / "static"
    checked = 0
    for path in static.iterdir():
        assert static_file(path.name) == path, f"{path.name} would not be served"
        text = path.read_text(encoding="utf-8")
        addresses = set(re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+\.[a-z]{2,}[^\s\"'`)]*", text)) - {"http://www.w3.org/2000/svg"}
        assert addresses == set(), (path.name, addresses)
        statements = re.findall(r"""^\s*(?:import|export)\b[^;'"]*?\bfrom\s*["']([^"']+)["']""", text, re.M)
        for imported in statements + re.findall(r"""\bimport\(\s*["']([^"']+)["']""", text):
            assert re.fullmatch(r"\./[a-z]+\.js", imported), (path.name, imported)
            assert (static / imported[2:]).is_file(), (path.name, imported)
            checked += 1
    assert checked >= 5  # the imports were found
    assert len(list(static.iterdir())) < 30  # a hand-written page, not a vendored bundle


def test_a_wrong_token_is_refused_and_nothing_is_kept(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/workbench")
    page.fill("#token", "sgm_not-a-token")
    page.press("#token", "Enter")
    page.wait_for_selector("#sign-in-error:has-text('not valid')")
    assert page.evaluate("sessionStorage.length") == 0
    assert page.is_hidden("#nav")


def test_a_viewer_sees_its_limits_and_the_token_survives_a_reload(
    page: Page, server: LiveServer, sign_in: Callable[..., None]
) -> None:
    sign_in(page, "viewer")
    assert "not save, activate or apply" in page.inner_text("#limits")
    assert page.evaluate("document.body.dataset.role") == "viewer"
    page.reload()
    page.wait_for_selector("#role-badge:has-text('viewer')")
    assert page.is_hidden("#sign-in")
    page.click("#sign-out")
    page.wait_for_selector("#sign-in:not([hidden])")
    assert page.evaluate("sessionStorage.length") == 0


def test_the_screens_are_reached_with_the_keyboard(page: Page, sign_in: Callable[..., None]) -> None:
    sign_in(page, "admin")
    assert "may save, activate and apply" in page.inner_text("#limits")
    page.wait_for_selector("#nav a[aria-current=page][data-route=editor]")
    # Tab from the top of a fresh page reaches the skip link first, then the screens' links in order.
    page.reload()
    page.wait_for_selector("#role-badge:has-text('admin')")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    for _ in range(4):
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.route") == "dashboards"
    page.keyboard.press("Enter")
    page.wait_for_selector("#nav a[aria-current=page][data-route=dashboards]")
    assert page.url.endswith("#/dashboards")
    page.go_back()
    page.wait_for_selector("#nav a[aria-current=page][data-route=editor]")
    shot(page, "shell")


def test_narrow_screens_keep_every_link_visible(page: Page, sign_in: Callable[..., None]) -> None:
    page.set_viewport_size(NARROW)
    sign_in(page, "manager")
    assert "preview rules" in page.inner_text("#limits")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= NARROW["width"], f"the page scrolls sideways at 390 px ({width} px wide)"
    for route in ("editor", "preview", "explain", "dashboards"):
        assert page.is_visible(f"#nav a[data-route={route}]")
    shot(page, "shell")


def test_a_token_revoked_while_signed_in_leads_back_to_sign_in(
    page: Page, server: LiveServer, sign_in: Callable[..., None]
) -> None:
    created = server.query('mutation { createApiToken(input: {role: VIEWER, label: "short-lived"}) { secret apiToken { id } } }')
    token = created[1]["data"]["createApiToken"]
    page.goto(f"{server.url}/workbench#/editor")
    page.fill("#token", token["secret"])
    page.press("#token", "Enter")
    page.wait_for_selector("#role-badge:has-text('viewer')")
    server.query("mutation($id: ID!) { revokeApiToken(id: $id) { userErrors { code } } }", {"id": token["apiToken"]["id"]})
    # Another server process may accept the token for SEGMENTA_TOKEN_CACHE seconds (5) after the
    # revocation: open the editor again (each opening asks the API) until it is refused.
    for _ in range(40):
        if page.is_visible("#sign-in-error:has-text('no longer valid')"):
            break
        page.evaluate("() => { window.location.hash = window.location.hash === '#/editor' ? '#/dashboards' : '#/editor'; }")
        page.wait_for_timeout(500)
    page.wait_for_selector("#sign-in-error:has-text('no longer valid')")
    assert page.is_hidden("#nav")
    assert page.evaluate("() => sessionStorage.length") == 0
