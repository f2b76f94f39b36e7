"""What the preview, explain and dashboards tests share: edited rules that move customers, and the
way the editor hands its rule text to those screens (sessionStorage, workbench/static/source.js)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from tests.live_server import LiveServer

ROOT = Path(__file__).resolve().parent.parent.parent
SOURCE_KEY = "segmenta.workbench.source"
SAMPLE = (ROOT / "domain" / "sample_rules.seg").read_text(encoding="utf-8")
# The sample policy with eastern customers sent north (tagged on the way), and a rule that can no
# longer hit anybody: the preview must show moves, a gained tag and a rule hitting nothing.
EAST = "east: region in (east, 华东) -> team east_region"
STANDARD = "standard: size in (small, medium) -> team standard_service"
assert EAST in SAMPLE and STANDARD in SAMPLE
EDITED = SAMPLE.replace(EAST, "east: region in (east, 华东) -> team north_region, tag moved_north").replace(
    STANDARD, "standard: size in (small, medium) and region = nowhere -> team standard_service"
)


def hand_over(page: Page, source: str) -> None:
    """Do what the editor does with the rule text being edited."""
    page.evaluate("([key, text]) => sessionStorage.setItem(key, text)", [SOURCE_KEY, source])


def api(server: LiveServer, query: str, variables: dict[str, Any] | None = None, role: str = "admin") -> Any:
    status, body = server.query(query, variables, role=role)
    assert status == 200 and "errors" not in body, body
    return body["data"]


def module(page: Page, name: str, expression: str) -> Any:
    """Evaluate `expression` in the page with the static module `name` imported as `m`."""
    return page.evaluate(
        f"async () => {{ const m = await import('/workbench/static/{name}'); return {expression}; }}"
    )


def fits(page: Page) -> None:
    """Nothing makes the page scroll sideways (wide tables scroll in their own box)."""
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size["width"] if page.viewport_size else 0
    assert width <= viewport, f"the page scrolls sideways at {viewport} px ({width} px wide)"
