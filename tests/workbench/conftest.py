"""The workbench's browser tests: one live `segmenta serve` per test module, on its own copy of the
demo data, and one headless chromium per module (tests/browser.py), a fresh page (own
sessionStorage) per test.

Every page refuses requests that leave the server under test, as on a machine without internet,
and a test fails when the page throws an uncaught JavaScript error. Screenshots go to
SEGMENTA_TEST_ARTIFACTS (default `test-artifacts/` at the repository root, ignored by git), in a
`workbench/` folder: `shot(page, "editor")` saves `editor-1280.png` or `editor-390.png` by the
page's width.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.browser import headless_chromium
from tests.live_server import SEGMENTA, LiveServer, segmenta

ROOT = Path(__file__).resolve().parent.parent.parent
WAIT_MS = 30_000
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}
DEMO_CUSTOMERS = 200
TOKEN = re.compile(r"/graphql\?token=(sgm_[A-Za-z0-9_-]+)")


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("SEGMENTA_TEST_ARTIFACTS") or ROOT / "test-artifacts") / "workbench"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The demo database and its admin, manager and viewer tokens, made once per run: each module's
    server starts on a copy (the CLI's start-up made `demo` and two `token create` cost ~17 s a module)."""
    folder = tmp_path_factory.mktemp("workbench-demo")
    path = folder / "demo.db"
    url = f"sqlite+aiosqlite:///{path}"
    prepared = subprocess.run(
        [SEGMENTA, "demo", "--no-serve", "--customers", str(DEMO_CUSTOMERS), "--database-url", url],
        capture_output=True, text=True, check=True, timeout=300,
    )
    token = TOKEN.search(prepared.stdout)
    assert token is not None, prepared.stdout
    tokens = {"admin": token.group(1)}
    for role in ("manager", "viewer"):
        tokens[role] = segmenta("token", "create", "--role", role, "--database-url", url).strip()
    return path, tokens


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, demo_template: tuple[Path, dict[str, str]]
) -> Iterator[LiveServer]:
    """`segmenta serve` on a fresh copy of the demo data (its sample rules active), with admin,
    manager and viewer tokens: what one module changes, the next does not see. A module's
    `SERVER_ENV` (a dict) adds settings, e.g. `{"SEGMENTA_RUN_WAIT": "0"}`."""
    template, tokens = demo_template
    folder = tmp_path_factory.mktemp("workbench")
    # No process holds the template open, so its WAL is checkpointed: the file alone is the data.
    for suffix in ("", "-wal", "-shm"):
        source = template.with_name(template.name + suffix)
        if source.exists():
            shutil.copyfile(source, folder / source.name)
    env = getattr(request.module, "SERVER_ENV", None)
    live = LiveServer.serve(f"sqlite+aiosqlite:///{folder / template.name}", folder, env=env, tokens=dict(tokens))
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Per module, not per run: Playwright's sync API keeps an event loop running while it is
    # open, and async tests collected after these would then fail to start theirs.
    with headless_chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    """A new page at 1280 × 900 that may reach only the server under test."""
    context = browser.new_context(viewport=WIDE)
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    refused: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))

    def only_the_server(route: Any) -> None:
        if route.request.url.startswith(server.url) or route.request.url.startswith(server.url.replace("http", "ws")):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    opened.route("**/*", only_the_server)
    try:
        yield opened
    finally:
        context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"
    assert [url for url in refused if "favicon" not in url] == [], f"requests off the server: {refused}"


@pytest.fixture
def sign_in(server: LiveServer) -> Callable[..., None]:
    """Open the workbench (at `hash`) and sign in with the token of `role`; waits for the role badge."""

    def signed_in(page: Page, role: str = "admin", hash: str = "#/editor") -> None:
        page.goto(f"{server.url}/workbench{hash}")
        page.fill("#token", server.tokens[role])
        page.click("#sign-in-form button[type=submit]")
        page.wait_for_selector(f"#role-badge:has-text('{role}')")

    return signed_in


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot named by the page's width; returns its path."""
    width = page.viewport_size["width"] if page.viewport_size else 0
    path = artifacts_dir() / f"{name}-{width}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
