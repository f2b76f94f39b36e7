"""Sets of values a field may take, for the static analysis (dsl.analysis, dsl.normal_forms).

* numbers: a union of intervals over the reals (open or closed ends);
* dates: a union of day intervals (calendar days are discrete);
* text and ordered fields: a finite set of words, or "anything but" a finite set;
* custom attributes: a text part and a number part;
* and whether the value may be missing.

Each set is closed under intersection and complement, which is all the analysis needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

from segmenta.dsl.fields import FieldSpec

# ---------------------------------------------------------------------------
# Value sets.
# ---------------------------------------------------------------------------

INF = math.inf


@dataclass(slots=True)
class Interval:
    low: float
    low_closed: bool
    high: float
    high_closed: bool

    @property
    def empty(self) -> bool:
        return self.low > self.high or (self.low == self.high and not (self.low_closed and self.high_closed))


# Numbers range over the extended reals (a float may be infinite); days over the
# ordinals of datetime.date.min .. datetime.date.max.
_NUMBER_LINE = Interval(-INF, True, INF, True)
_DAY_LINE = Interval(float(date.min.toordinal()), True, float(date.max.toordinal()), True)


@dataclass(slots=True)
class Intervals:
    """A union of disjoint intervals, sorted; `discrete` for whole days (closed integer bounds)."""

    parts: tuple[Interval, ...]
    discrete: bool

    @classmethod
    def everything(cls, discrete: bool) -> Intervals:
        return cls((_DAY_LINE if discrete else _NUMBER_LINE,), discrete)

    @classmethod
    def of(cls, interval: Interval, discrete: bool) -> Intervals:
        return cls((interval,), discrete).intersect(cls.everything(discrete))

    @property
    def empty(self) -> bool:
        return not self.parts

    def intersect(self, other: Intervals) -> Intervals:
        mine, theirs = self.parts, other.parts
        if mine is theirs:
            return self
        parts = []
        for a in mine:
            for b in theirs:
                if a.low > b.low or (a.low == b.low and not a.low_closed):
                    low, low_closed = a.low, a.low_closed
                else:
                    low, low_closed = b.low, b.low_closed
                if a.high < b.high or (a.high == b.high and not a.high_closed):
                    high, high_closed = a.high, a.high_closed
                else:
                    high, high_closed = b.high, b.high_closed
                piece = Interval(low, low_closed, high, high_closed)
                if self.discrete:
                    piece = _closed_integers(piece)
                if not piece.empty:
                    parts.append(piece)
        if len(parts) > 1:
            parts.sort(key=lambda p: (p.low, not p.low_closed))
        return Intervals(tuple(parts), self.discrete)

    def complement(self) -> Intervals:
        line = _DAY_LINE if self.discrete else _NUMBER_LINE
        gaps = []
        low, low_closed = line.low, True
        for part in self.parts:
            gaps.append(Interval(low, low_closed, part.low, not part.low_closed))
            low, low_closed = part.high, not part.high_closed
        gaps.append(Interval(low, low_closed, line.high, True))
        pieces = [_closed_integers(g) if self.discrete else g for g in gaps]
        return Intervals(tuple(p for p in pieces if not p.empty), self.discrete)


def _closed_integers(interval: Interval) -> Interval:
    low = interval.low if interval.low_closed or math.isinf(interval.low) else interval.low + 1
    high = interval.high if interval.high_closed or math.isinf(interval.high) else interval.high - 1
    return Interval(low, True, high, True)


@dataclass(slots=True)
class Words:
    """A set of text values: exactly `values` (finite) or everything but `values`."""

    finite: bool
    values: frozenset[str]

    @property
    def empty(self) -> bool:
        return self.finite and not self.values

    def intersect(self, other: Words) -> Words:
        if self.finite and other.finite:
            return Words(True, self.values & other.values)
        if self.finite:
            return Words(True, self.values - other.values)
        if other.finite:
            return Words(True, other.values - self.values)
        return Words(False, self.values | other.values)

    def complement(self) -> Words:
        return Words(not self.finite, self.values)


ALL_WORDS = Words(False, frozenset())
NO_WORDS = Words(True, frozenset())


@dataclass(slots=True)
class Domain:
    """The values a scalar field may take; a part is None when the field has no such values."""

    missing: bool
    words: Words | None = None
    numbers: Intervals | None = None
    days: Intervals | None = None

    @property
    def empty(self) -> bool:
        if self.missing:
            return False
        words, numbers, days = self.words, self.numbers, self.days
        return (
            (words is None or (words.finite and not words.values))
            and (numbers is None or not numbers.parts)
            and (days is None or not days.parts)
        )

    def intersect(self, other: Domain) -> Domain:
        return Domain(
            self.missing and other.missing,
            None if self.words is None or other.words is None else self.words.intersect(other.words),
            None if self.numbers is None or other.numbers is None else self.numbers.intersect(other.numbers),
            None if self.days is None or other.days is None else self.days.intersect(other.days),
        )

    def complement(self) -> Domain:
        return Domain(
            not self.missing,
            None if self.words is None else self.words.complement(),
            None if self.numbers is None else self.numbers.complement(),
            None if self.days is None else self.days.complement(),
        )

    def has_non_text_value(self) -> bool:
        return self.missing or any(p is not None and not p.empty for p in (self.numbers, self.days))


def universe(spec: FieldSpec) -> Domain:
    return _UNIVERSES[spec.kind]


def empty_domain(spec: FieldSpec) -> Domain:
    return _NOTHINGS[spec.kind]


def _make_universe(kind: str) -> Domain:
    if kind in ("text", "ordered"):
        return Domain(True, words=ALL_WORDS)
    if kind == "number":
        return Domain(True, numbers=Intervals.everything(False))
    if kind == "date":
        return Domain(True, days=Intervals.everything(True))
    return Domain(True, words=ALL_WORDS, numbers=Intervals.everything(False))  # custom attribute


def _make_nothing(kind: str) -> Domain:
    whole = _make_universe(kind)
    return Domain(
        False,
        None if whole.words is None else NO_WORDS,
        None if whole.numbers is None else Intervals((), False),
        None if whole.days is None else Intervals((), True),
    )


# Shared, never mutated.
_KINDS = ("text", "ordered", "number", "date", "attribute", "set")
_UNIVERSES = {kind: _make_universe(kind) for kind in _KINDS}
_NOTHINGS = {kind: _make_nothing(kind) for kind in _KINDS}


def replaced(base: Domain, **parts: Any) -> Domain:
    """`base` with some parts replaced (dataclasses.replace, without its overhead)."""
    return Domain(
        parts.get("missing", base.missing),
        parts.get("words", base.words),
        parts.get("numbers", base.numbers),
        parts.get("days", base.days),
    )


def union(a: Domain, b: Domain) -> Domain:
    return a.complement().intersect(b.complement()).complement()
