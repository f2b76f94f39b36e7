"""SEGMENTA_RUN_WAIT parsing (domain/run_tasks.py); the launcher itself is tested through the API
(tests/schema/test_background_runs.py)."""

from __future__ import annotations

import pytest

from domain.errors import UserError
from domain.run_tasks import DEFAULT_WAIT, wait_from_environment


@pytest.mark.parametrize(("raw", "seconds"), [("", DEFAULT_WAIT), ("0", 0.0), ("2.5", 2.5), (" 10 ", 10.0)])
def test_wait_setting(raw: str, seconds: float) -> None:
    assert wait_from_environment({"SEGMENTA_RUN_WAIT": raw}) == seconds


def test_default_wait_without_the_setting() -> None:
    assert wait_from_environment({}) == DEFAULT_WAIT


@pytest.mark.parametrize("raw", ["-1", "soon", "nan", "inf", "2s"])
def test_bad_wait_setting_is_a_clear_error(raw: str) -> None:
    with pytest.raises(UserError, match="SEGMENTA_RUN_WAIT must be a number of seconds"):
        wait_from_environment({"SEGMENTA_RUN_WAIT": raw})
