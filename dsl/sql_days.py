"""Whole-day arithmetic for day-based metrics in SQL: the integers a comparison accepts, as
intervals, and instants `n` days before `as_of` that never overflow (docs/sql-compilation.md,
'Day-based metrics')."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

# Whole days that can separate two datetimes (year 1 to 9999), with margin; clamping
# literals to this range keeps floor/ceil and timedelta finite without changing results.
_DAY_LIMIT = 10_000_000.0

IntInterval = tuple[int | None, int | None]  # inclusive; None is unbounded


def _clamp(number: float) -> float:
    return max(-_DAY_LIMIT, min(_DAY_LIMIT, number))


def integer_interval(op: str, number: float) -> IntInterval | None:
    """The integers n with `n op number`, as one interval; None when there are none."""
    if math.isnan(number):
        return None
    number = _clamp(number)
    if op == "=":
        return (int(number), int(number)) if number.is_integer() else None
    if op == "<":
        return (None, math.ceil(number) - 1)
    if op == "<=":
        return (None, math.floor(number))
    if op == ">":
        return (math.floor(number) + 1, None)
    if op == ">=":
        return (math.ceil(number), None)
    raise ValueError(f"no interval for operator {op}")


def between_interval(low: float, high: float) -> IntInterval | None:
    if math.isnan(low) or math.isnan(high):
        return None
    first, last = math.ceil(_clamp(low)), math.floor(_clamp(high))
    return (first, last) if first <= last else None


def in_interval(number: int, interval: IntInterval) -> bool:
    low, high = interval
    return (low is None or number >= low) and (high is None or number <= high)


class Unbounded:
    """A bound beyond every representable instant (before all, or after all)."""

    def __init__(self, after_all: bool) -> None:
        self.after_all = after_all


_BEFORE_ALL = Unbounded(after_all=False)
_AFTER_ALL = Unbounded(after_all=True)


def days_before(as_of: datetime, days: int) -> datetime | Unbounded:
    try:
        return as_of - timedelta(days=days)
    except OverflowError:
        return _BEFORE_ALL if days > 0 else _AFTER_ALL


def next_day(day: date) -> date | None:
    try:
        return day + timedelta(days=1)
    except OverflowError:
        return None


# Every month-day a birthday can have, in calendar order (a leap year holds them all).
ALL_MONTH_DAYS: tuple[date, ...] = tuple(date(2000, 1, 1) + timedelta(days=offset) for offset in range(366))


def month_day_number(day: date) -> int:
    return day.month * 100 + day.day
