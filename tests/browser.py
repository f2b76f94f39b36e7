"""A real headless browser for the web pages' tests: Debian's chromium, driven by Playwright.

.ci/run installs chromium when it is missing and sets SEGMENTA_REQUIRE_BROWSER=1, so there a
missing browser fails the run; elsewhere the browser tests are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    configured = os.environ.get("SEGMENTA_TEST_CHROMIUM")
    if configured:
        return configured
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    executable = chromium_path()
    if executable is None:
        message = "no chromium on this machine (Debian: apt-get install chromium)"
        if os.environ.get("SEGMENTA_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(Path(executable)), headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
