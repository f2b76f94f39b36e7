"""domain/settings.py: the one reader of number settings, and the settings that use it."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segmenta.domain.access import tokens
from segmenta.domain.errors import UserError
from segmenta.domain.routing import run_tasks
from segmenta.domain.settings import SettingError, number_setting
from segmenta.schema.limits import RequestLimits
from segmenta.storage import engine, guard

NAME = "SEGMENTA_EXAMPLE"

# The kinds of setting in use, as number_setting's keyword arguments.
KINDS: dict[str, dict[str, Any]] = {
    "seconds ≥ 0": {"minimum": 0},
    "seconds > 0": {"minimum": 0, "minimum_exclusive": True},
    "whole ≥ 1": {"minimum": 1, "whole": True},
    "seconds ≥ 0 or off": {"minimum": 0, "off": True},
    "seconds from 0 to 3600": {"minimum": 0, "maximum": 3600},
}

REFUSED_BY_ALL = ["soon", "5s", "1,5", "nan", "NaN", "inf", "-inf", "Infinity", "-1", "0x10", "½"]

ACCEPTED = {
    "seconds ≥ 0": [("0", 0.0), (" 2.5 ", 2.5), ("1e3", 1000.0), ("1_000", 1000.0), ("86400", 86400.0)],
    "seconds > 0": [("0.001", 0.001), ("60", 60.0), ("1e-9", 1e-9)],
    "whole ≥ 1": [("1", 1), (" 250 ", 250), ("+3", 3), ("1_000", 1000)],
    "seconds ≥ 0 or off": [("off", None), (" OFF ", None), ("0", None), ("0.0", None), ("2.5", 2.5)],
    "seconds from 0 to 3600": [("0", 0.0), ("3600", 3600.0), ("0.25", 0.25)],
}

REFUSED = {
    "seconds ≥ 0": ["off", "-0.001"],
    "seconds > 0": ["0", "-0", "0.0", "off"],
    "whole ≥ 1": ["0", "-3", "2.5", "1e3", "1.0", "off"],
    "seconds ≥ 0 or off": ["of", "none", "disabled", "-0.5"],
    "seconds from 0 to 3600": ["3600.001", "1e9", "off"],
}

ACCEPTED_WORDS = {
    "seconds ≥ 0": "a number of seconds ≥ 0",
    "seconds > 0": "a number of seconds > 0",
    "whole ≥ 1": "a whole number ≥ 1",
    "seconds ≥ 0 or off": "a number of seconds ≥ 0 or off",
    "seconds from 0 to 3600": "a number of seconds from 0 to 3600",
}


def read(kind: str, raw: str | None, default: float | None = 7) -> float | int | None:
    return number_setting(NAME, default, environ={} if raw is None else {NAME: raw}, **KINDS[kind])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("raw", [None, "", "   ", "\t\n"])
def test_unset_or_blank_is_the_default(kind: str, raw: str | None) -> None:
    assert read(kind, raw) == 7
    assert read(kind, raw, default=None) is None


@pytest.mark.parametrize(("kind", "raw", "expected"), [(k, raw, value) for k in KINDS for raw, value in ACCEPTED[k]])
def test_accepted_values(kind: str, raw: str, expected: float | None) -> None:
    value = read(kind, raw)
    assert value == expected
    assert type(value) is (type(None) if expected is None else int if KINDS[kind].get("whole") else float)


@pytest.mark.parametrize(("kind", "raw"), [(k, raw) for k in KINDS for raw in REFUSED_BY_ALL + REFUSED[k]])
def test_refused_values_name_the_setting_and_what_it_accepts(kind: str, raw: str) -> None:
    with pytest.raises(SettingError) as raised:
        read(kind, raw)
    error = raised.value
    assert isinstance(error, UserError)
    assert error.field == NAME and error.code == "bad_setting"
    assert error.message == f"{NAME} must be {ACCEPTED_WORDS[kind]}, not {raw.strip()!r}"


def test_the_process_environment_is_read_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NAME, "12")
    assert number_setting(NAME, 1, minimum=0) == 12.0
    monkeypatch.delenv(NAME)
    assert number_setting(NAME, 1, minimum=0) == 1


def test_a_long_bad_value_is_quoted_shortly() -> None:
    with pytest.raises(SettingError) as raised:
        read("seconds ≥ 0", "x" * 10_000)
    assert raised.value.message.endswith(f", not {'x' * 37!r}…")


def test_a_bad_value_of_control_characters_is_quoted_shortly() -> None:
    with pytest.raises(SettingError) as raised:
        read("seconds ≥ 0", "\x01" * 100)
    quoted = raised.value.message.split(", not ", 1)[1]
    assert quoted == repr("\x01" * 9) + "…" and len(quoted) <= 40


def test_a_huge_whole_number_is_a_number_not_a_crash() -> None:
    assert read("whole ≥ 1", "9" * 400) == int("9" * 400)
    with pytest.raises(SettingError):
        read("whole ≥ 1", "9" * 5_000)  # beyond int()'s digit limit


# Each public reader: its setting, its default, a value at its edge it accepts and one it refuses.
READERS: list[tuple[Callable[[dict[str, str]], Any], str, Any, str, Any, str]] = [
    (run_tasks.wait_from_environment, run_tasks.WAIT_SETTING, 2.0, "0", 0.0, "-0.1"),
    (run_tasks.grace_from_environment, run_tasks.GRACE_SETTING, 60.0, "0.01", 0.01, "0"),
    (tokens.recheck_interval, tokens.RECHECK_SETTING, 5.0, "3600", 3600.0, "3601"),
    (engine.busy_timeout_from_environment, engine.BUSY_TIMEOUT_SETTING, 10.0, "3600", 3600.0, "3600.5"),
    (guard.statement_timeout_from_environment, guard.TIMEOUT_SETTING, 15.0, "off", None, "-1"),
    (guard.max_terms_from_environment, guard.MAX_TERMS_SETTING, 100, "1", 1, "0"),
    (lambda environ: guard.share_settings_from_environment(environ).slots, guard.SHARE_SETTING, None, "1", 1, "0"),
    (lambda environ: guard.share_settings_from_environment(environ).wait, guard.SHARE_WAIT_SETTING, 2.0, "0", 0.0, "off"),
    (lambda environ: RequestLimits.from_environment(environ).max_aliases, "SEGMENTA_MAX_ALIASES", 30, "0", 0, "-1"),
    (lambda environ: RequestLimits.from_environment(environ).max_query_tokens, "SEGMENTA_MAX_QUERY_TOKENS", 5000, "100", 100, "99"),
    (lambda environ: RequestLimits.from_environment(environ).request_timeout, "SEGMENTA_REQUEST_TIMEOUT", 30.0, "0.5", 0.5, "0"),
]


@pytest.mark.parametrize(("reader", "setting", "default", "edge", "value", "beyond"), READERS)
def test_each_reader_keeps_its_default_and_range(
    reader: Callable[[dict[str, str]], Any], setting: str, default: Any, edge: str, value: Any, beyond: str
) -> None:
    assert reader({}) == default
    assert reader({setting: edge}) == value
    with pytest.raises(SettingError) as raised:
        reader({setting: beyond})
    assert raised.value.field == setting and setting in raised.value.message


numberish = st.from_regex(r"\s*[-+]?\d{0,6}(\.\d{0,4})?([eE][-+]?\d{1,3})?\s*", fullmatch=True)
words = st.sampled_from(["off", "OFF", "nan", "-nan", "inf", "-Infinity", "1_0", "٣", "0", "-0", "1e308", "1e309"])


@given(kind=st.sampled_from(sorted(KINDS)), raw=st.one_of(st.text(), numberish, words))
def test_any_text_is_a_number_in_range_or_refused_by_name(kind: str, raw: str) -> None:
    bounds = KINDS[kind]
    try:
        value = read(kind, raw, default=None)
    except SettingError as error:
        assert NAME in error.message and error.field == NAME
        assert len(error.message) < 120
        return
    if value is None:
        assert not raw.strip() or (bounds.get("off") and (raw.strip().lower() == "off" or float(raw.strip()) == 0))
        return
    assert isinstance(value, int if bounds.get("whole") else float)
    assert math.isfinite(value)
    assert value >= bounds["minimum"]
    assert not (bounds.get("minimum_exclusive") and value == bounds["minimum"])
    assert bounds.get("maximum") is None or value <= bounds["maximum"]
