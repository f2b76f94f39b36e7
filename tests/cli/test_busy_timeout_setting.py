"""SEGMENTA_SQLITE_BUSY_TIMEOUT: read in one place (storage/engine.py), a clear error for a bad value."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from segmenta.domain.errors import UserError
from segmenta.storage.engine import BUSY_TIMEOUT_SETTING, DEFAULT_BUSY_TIMEOUT, busy_timeout_from_environment

SEGMENTA = str(Path(sys.executable).with_name("segmenta"))


@pytest.mark.parametrize(("raw", "seconds"), [("", DEFAULT_BUSY_TIMEOUT), (" 2.5 ", 2.5), ("0", 0.0), ("3600", 3600.0)])
def test_good_values(raw: str, seconds: float) -> None:
    assert busy_timeout_from_environment({BUSY_TIMEOUT_SETTING: raw}) == seconds


@pytest.mark.parametrize("raw", ["abc", "-1", "nan", "inf", "3601", "1e400", "10s"])
def test_bad_values_name_the_setting(raw: str) -> None:
    with pytest.raises(UserError) as raised:
        busy_timeout_from_environment({BUSY_TIMEOUT_SETTING: raw})
    assert BUSY_TIMEOUT_SETTING in raised.value.message and repr(raw) in raised.value.message


def test_unset_is_the_default() -> None:
    assert busy_timeout_from_environment({}) == DEFAULT_BUSY_TIMEOUT and math.isfinite(DEFAULT_BUSY_TIMEOUT)


def test_serve_stops_with_the_setting_named_before_touching_the_database(tmp_path: Path) -> None:
    database = tmp_path / "never.db"
    completed = subprocess.run(
        [SEGMENTA, "serve", "--port", "1", "--database-url", f"sqlite:///{database}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, BUSY_TIMEOUT_SETTING: "soon"},
    )
    assert completed.returncode != 0
    assert f"{BUSY_TIMEOUT_SETTING} must be a number of seconds" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not database.exists()
