"""Static analysis of a checked rule file: shadowed rules, contradictions, overlaps.

Conditions are put into disjunctive normal form over *literals* (a predicate or its
exact complement; the rule language makes `not p` the complement of `p`, missing
values included: docs/rule-language.md, 'Conditions').  Each conjunction keeps, per
field, the exact set of values the field may still take:

* numbers: a union of intervals over the reals (open or closed ends);
* dates: a union of day intervals (calendar days are discrete);
* text and ordered fields: a finite set of words, or "anything but" a finite set
  (an ordered comparison is the finite set of words of qualifying rank, so a
  stored word outside the declared order is handled exactly);
* custom attributes: a text part and a number part;
* set fields: words it must and must not contain, and presence;
* and whether the value may be missing.

A conjunction is unsatisfiable when some field has no value left; fields are
treated as independent, which only ever adds customers, so "unsatisfiable" is
certain.  What cannot be decided exactly (text ordering, `like` patterns against an
open set of words, fields derived from each other) is UNKNOWN, and the analysis then
says nothing.  Normal forms and the total work are capped; beyond the caps, also nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from typing import Any, ClassVar

from segmenta.dsl import ast
from segmenta.dsl.ast import NodeTable
from segmenta.dsl.diagnostics import Diagnostic
from segmenta.dsl.fields import FieldSpec, lookup, rank
from segmenta.dsl.like import like_regex
from segmenta.dsl.python_compiler import pattern_text

MAX_CONJUNCTIONS = 64
MAX_WORK = 300_000

# Fields whose values depend on each other (all measured from the same records):
# a conjunction constraining two of one group could be impossible in real data.
_DEPENDENT_GROUPS = (
    frozenset({"purchase_count", "total_spent", "avg_order_value", "first_purchase_at", "last_purchase_at",
               "days_since_purchase", "product_categories"}),
    frozenset({"avg_satisfaction", "nps", "feedback_count", "complaint_count", "open_complaints"}),
    frozenset({"interaction_count", "days_since_contact"}),
    frozenset({"created_at", "tenure_days"}),
    frozenset({"birthday", "days_to_birthday"}),
)
_GROUP_OF = {name: index for index, group in enumerate(_DEPENDENT_GROUPS) for name in group}


class Sat(Enum):
    UNSAT = 0
    UNKNOWN = 1
    SAT = 2


# Module-level aliases: the hot loops read these instead of the enum's class attributes.
_UNSAT, _UNKNOWN, _SAT = Sat.UNSAT, Sat.UNKNOWN, Sat.SAT


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


def _nothing(spec: FieldSpec) -> Domain:
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


# ---------------------------------------------------------------------------
# Per-field state inside a conjunction.
# ---------------------------------------------------------------------------

TextTest = Callable[[str], bool]


@dataclass(slots=True)
class ScalarState:
    domain: Domain
    # Undecidable text tests (text ordering, wildcard patterns): (test, wanted result).
    tests: tuple[tuple[TextTest, bool], ...] = ()

    def sat(self) -> Sat:
        if self.domain.empty:
            return _UNSAT
        if not self.tests or self.domain.has_non_text_value():
            return _SAT
        words = self.domain.words
        if words is None or not words.finite:
            return _UNKNOWN
        fits = any(all(test(word) == wanted for test, wanted in self.tests) for word in words.values)
        return _SAT if fits else _UNSAT

    def merge(self, other: ScalarState) -> ScalarState:
        return ScalarState(self.domain.intersect(other.domain), self.tests + other.tests)


@dataclass(slots=True)
class SetState:
    """A set field: members it must / must not have; `missing` True/False when required, None when free."""

    must: frozenset[str] = frozenset()
    must_not: frozenset[str] = frozenset()
    missing: bool | None = None
    conflict: bool = False

    def sat(self) -> Sat:
        if self.conflict or self.must & self.must_not or (self.missing is True and self.must):
            return _UNSAT
        return _SAT

    def merge(self, other: SetState) -> SetState:
        conflict = self.conflict or other.conflict
        missing = self.missing
        if other.missing is not None:
            if missing is not None and missing != other.missing:
                conflict = True
            missing = other.missing
        return SetState(self.must | other.must, self.must_not | other.must_not, missing, conflict)


FieldState = ScalarState | SetState


@dataclass(slots=True)
class Conjunction:
    fields: dict[str, FieldState] = field(default_factory=dict)
    statuses: dict[str, Sat] = field(default_factory=dict)
    status: Sat = _SAT

    @classmethod
    def of(cls, fields: dict[str, FieldState]) -> Conjunction:
        statuses = {name: state.sat() for name, state in fields.items()}
        return cls(fields, statuses, _status(statuses))

    def merge(self, other: Conjunction) -> Conjunction:
        if self.status is _UNSAT or other.status is _UNSAT:
            return UNSAT_CONJUNCTION
        if not other.fields:
            return self
        if not self.fields:
            return other
        fields = dict(self.fields)
        statuses = dict(self.statuses)
        for name, state in other.fields.items():
            mine = fields.get(name)
            if mine is None:
                fields[name] = state
                statuses[name] = other.statuses[name]
            else:
                merged = mine.merge(state)  # type: ignore[arg-type]
                status = merged.sat()
                if status is _UNSAT:
                    return UNSAT_CONJUNCTION
                fields[name] = merged
                statuses[name] = status
        return Conjunction(fields, statuses, _status(statuses))


    def status_with(self, other: Conjunction) -> Sat:
        """The status `merge` would give, without building the merged conjunction."""
        if self.status is _UNSAT or other.status is _UNSAT:
            return _UNSAT
        status = _SAT
        groups: dict[int, str] = {}
        for name, state in other.fields.items():
            mine = self.fields.get(name)
            result = other.statuses[name] if mine is None else mine.merge(state).sat()  # type: ignore[arg-type]
            if result is _UNSAT:
                return _UNSAT
            if result is _UNKNOWN:
                status = _UNKNOWN
            group = _GROUP_OF.get(name)
            if group is not None:
                if groups.setdefault(group, name) != name:
                    status = _UNKNOWN
        for name, result in self.statuses.items():
            if name in other.fields:
                continue
            if result is _UNKNOWN:
                status = _UNKNOWN
            group = _GROUP_OF.get(name)
            if group is not None:
                if groups.setdefault(group, name) != name:
                    status = _UNKNOWN
        return status


UNSAT_CONJUNCTION = Conjunction({}, {}, _UNSAT)
TOP = Conjunction({}, {}, _SAT)


def _status(statuses: dict[str, Sat]) -> Sat:
    status = _SAT
    groups: set[int] = set()
    for name, result in statuses.items():
        if result is _UNSAT:
            return _UNSAT
        if result is _UNKNOWN:
            status = _UNKNOWN
        group = _GROUP_OF.get(name)
        if group is not None:
            if group in groups:
                status = _UNKNOWN
            groups.add(group)
    return status


# ---------------------------------------------------------------------------
# Literals: a predicate, or its complement, as a one-field conjunction.
# ---------------------------------------------------------------------------


def _number_interval(op: str, value: float) -> Interval:
    if op == "=":
        return Interval(value, True, value, True)
    if op == "<":
        return Interval(-INF, True, value, False)
    if op == "<=":
        return Interval(-INF, True, value, True)
    if op == ">":
        return Interval(value, False, INF, True)
    return Interval(value, True, INF, True)


def _literal_domain(spec: FieldSpec, op: str, literal: ast.Value) -> Domain | TextTest:
    """Values satisfying `field op literal` (op never `!=`), or a text test when not decidable."""
    whole = universe(spec)
    nothing = _nothing(spec)
    if spec.kind == "ordered" and op != "=":
        position = rank(spec, literal.value) if literal.kind == "text" else None
        if position is None:
            return nothing
        compare = {"<": int.__lt__, "<=": int.__le__, ">": int.__gt__, ">=": int.__ge__}[op]
        words = frozenset(w for i, w in enumerate(spec.values) if compare(i, position))
        return _with(nothing, words=Words(True, words))
    if literal.kind == "text":
        if whole.words is None:
            return nothing
        if op == "=":
            return _with(nothing, words=Words(True, frozenset({literal.value})))  # type: ignore[arg-type]
        bound: str = literal.value  # type: ignore[assignment]
        return {"<": lambda s: s < bound, "<=": lambda s: s <= bound, ">": lambda s: s > bound, ">=": lambda s: s >= bound}[op]
    if literal.kind == "number":
        if whole.numbers is None:
            return nothing
        return _with(nothing, numbers=Intervals.of(_number_interval(op, float(literal.value)), False))  # type: ignore[arg-type]
    if literal.kind == "date":
        if whole.days is None:
            return nothing
        ordinal = float(literal.value.toordinal())  # type: ignore[union-attr]
        return _with(nothing, days=Intervals.of(_number_interval(op, ordinal), True))
    return nothing  # no field holds booleans


def _between_domain(spec: FieldSpec, between: ast.Between) -> Domain | TextTest:
    low, high = between.low, between.high
    nothing = _nothing(spec)
    if low.kind != high.kind:
        return nothing
    if spec.kind == "ordered":
        low_rank = rank(spec, low.value) if low.kind == "text" else None
        high_rank = rank(spec, high.value) if high.kind == "text" else None
        if low_rank is None or high_rank is None:
            return nothing
        words = frozenset(w for i, w in enumerate(spec.values) if low_rank <= i <= high_rank)
        return _with(nothing, words=Words(True, words))
    above = _literal_domain(spec, ">=", low)
    below = _literal_domain(spec, "<=", high)
    if isinstance(above, Domain) and isinstance(below, Domain):
        return above.intersect(below)
    if low.kind == "text":
        lo, hi = str(low.value), str(high.value)
        return lambda s: lo <= s <= hi
    return nothing


def _in_domain(spec: FieldSpec, in_list: ast.InList) -> Domain:
    result = _nothing(spec)
    for value in in_list.values:
        member = _literal_domain(spec, "=", value)
        assert isinstance(member, Domain)
        result = _union(result, member)
    return result


def _with(base: Domain, **parts: Any) -> Domain:
    """`base` with some parts replaced (dataclasses.replace, without its overhead)."""
    return Domain(
        parts.get("missing", base.missing),
        parts.get("words", base.words),
        parts.get("numbers", base.numbers),
        parts.get("days", base.days),
    )


def _union(a: Domain, b: Domain) -> Domain:
    return a.complement().intersect(b.complement()).complement()


def _scalar_literal(spec: FieldSpec, satisfying: Domain | TextTest, positive: bool) -> ScalarState:
    if isinstance(satisfying, Domain):
        return ScalarState(satisfying if positive else satisfying.complement())
    # An undecidable text test: when positive the value must be text that passes it.
    if positive:
        return ScalarState(_with(_nothing(spec), words=ALL_WORDS), ((satisfying, True),))
    return ScalarState(universe(spec), ((satisfying, False),))


def literal_conjunction(predicate: ast.Predicate, positive: bool) -> Conjunction:
    name = predicate.subject.name
    spec = lookup(name)
    if spec is None:
        raise ValueError(f"unknown field {name!r}")
    cases = _SET_LITERALS if spec.kind == "set" else _SCALAR_LITERALS
    state: FieldState = cases[type(predicate)](spec, predicate, positive)
    return Conjunction.of({name: state})


# -- on set fields ---------------------------------------------------------------


def _set_contains(spec: FieldSpec, predicate: ast.Contains, positive: bool) -> SetState:
    member = str(predicate.value.value)
    return SetState(must=frozenset({member})) if positive else SetState(must_not=frozenset({member}))


def _set_presence(spec: FieldSpec, predicate: ast.Presence, positive: bool) -> SetState:
    return SetState(missing=(predicate.present != positive))


def _set_never(spec: FieldSpec, predicate: ast.Predicate, positive: bool) -> SetState:
    """Any other comparison on a set is false for every customer."""
    return SetState(conflict=True) if positive else SetState()


_SET_LITERALS: NodeTable[Callable[[FieldSpec, Any, bool], FieldState]] = NodeTable(
    "analysis (set fields)",
    {
        **dict.fromkeys(ast.PREDICATE_TYPES, _set_never),
        ast.Contains: _set_contains,
        ast.Presence: _set_presence,
    },
    ast.PREDICATE_TYPES,
)


# -- on scalar fields ------------------------------------------------------------


def _scalar_presence(spec: FieldSpec, predicate: ast.Presence, positive: bool) -> ScalarState:
    missing_only = _with(_nothing(spec), missing=True)
    wants_missing = (not predicate.present) == positive
    return ScalarState(missing_only if wants_missing else missing_only.complement())


def _scalar_contains(spec: FieldSpec, predicate: ast.Contains, positive: bool) -> ScalarState:
    return ScalarState(_nothing(spec) if positive else universe(spec))


def _scalar_comparison(spec: FieldSpec, predicate: ast.Comparison, positive: bool) -> ScalarState:
    if predicate.op == "!=":
        return _scalar_literal(spec, _literal_domain(spec, "=", predicate.value), not positive)
    return _scalar_literal(spec, _literal_domain(spec, predicate.op, predicate.value), positive)


def _scalar_in_list(spec: FieldSpec, predicate: ast.InList, positive: bool) -> ScalarState:
    return _scalar_literal(spec, _in_domain(spec, predicate), positive != predicate.negated)


def _scalar_between(spec: FieldSpec, predicate: ast.Between, positive: bool) -> ScalarState:
    return _scalar_literal(spec, _between_domain(spec, predicate), positive)


def _scalar_like(spec: FieldSpec, predicate: ast.Like, positive: bool) -> ScalarState:
    pattern = pattern_text(predicate.pattern)
    if "*" not in pattern and "?" not in pattern:
        satisfying: Domain | TextTest = _with(_nothing(spec), words=Words(True, frozenset({pattern})))
    else:
        matcher = like_regex(pattern).fullmatch
        satisfying = lambda s: matcher(s) is not None  # noqa: E731
    if spec.kind not in ("text", "ordered", "attribute"):
        satisfying = _nothing(spec)
    return _scalar_literal(spec, satisfying, positive)


_SCALAR_LITERALS: NodeTable[Callable[[FieldSpec, Any, bool], FieldState]] = NodeTable(
    "analysis (scalar fields)",
    {
        ast.Comparison: _scalar_comparison,
        ast.InList: _scalar_in_list,
        ast.Between: _scalar_between,
        ast.Like: _scalar_like,
        ast.Contains: _scalar_contains,
        ast.Presence: _scalar_presence,
    },
    ast.PREDICATE_TYPES,
)


# ---------------------------------------------------------------------------
# Normal forms.
# ---------------------------------------------------------------------------


class TooBig(Exception):
    """A normal form or the analysis as a whole went over its cap."""


DNF = list[Conjunction]


@dataclass
class _Normalizer:
    segments: dict[str, ast.Condition]
    work: int = 0
    _cache: dict[tuple[int, bool], DNF] = field(default_factory=dict)
    _literals: dict[tuple[ast.Predicate, bool], Conjunction] = field(default_factory=dict)

    def spend(self, amount: int) -> None:
        self.work += amount
        if self.work > MAX_WORK:
            raise TooBig("analysis budget spent")

    def dnf(self, condition: ast.Condition, positive: bool = True) -> DNF:
        key = (id(condition), positive)
        if key not in self._cache:
            self._cache[key] = self._dnf(condition, positive)
        return self._cache[key]

    def _dnf(self, condition: ast.Condition, positive: bool) -> DNF:
        return self._CASES[type(condition)](self, condition, positive)

    def _bool_const(self, condition: ast.BoolConst, positive: bool) -> DNF:
        return [TOP] if condition.value == positive else []

    def _not(self, condition: ast.Not, positive: bool) -> DNF:
        return self.dnf(condition.operand, not positive)

    def _segment_ref(self, condition: ast.SegmentRef, positive: bool) -> DNF:
        return self.dnf(self.segments[condition.name], positive)

    def _and(self, condition: ast.And, positive: bool) -> DNF:
        parts = [self.dnf(op, positive) for op in condition.operands]
        return self._all(parts) if positive else self._any(parts)

    def _or(self, condition: ast.Or, positive: bool) -> DNF:
        parts = [self.dnf(op, positive) for op in condition.operands]
        return self._any(parts) if positive else self._all(parts)

    def _all(self, parts: list[DNF]) -> DNF:
        result: DNF = [TOP]
        for part in parts:
            result = self.product(result, part)
        return result

    @staticmethod
    def _any(parts: list[DNF]) -> DNF:
        union = [c for part in parts for c in part]
        if len(union) > MAX_CONJUNCTIONS:
            raise TooBig("normal form too large")
        return union

    def _literal(self, condition: ast.Predicate, positive: bool) -> DNF:
        literal_key = (condition, positive)
        conjunction = self._literals.get(literal_key)
        if conjunction is None:
            conjunction = self._literals[literal_key] = literal_conjunction(condition, positive)
        return [] if conjunction.status is _UNSAT else [conjunction]

    _CASES: ClassVar[NodeTable[Callable[[Any, Any, bool], DNF]]] = NodeTable(
        "analysis (normal forms)",
        {
            **dict.fromkeys(ast.PREDICATE_TYPES, _literal),
            ast.SegmentRef: _segment_ref,
            ast.BoolConst: _bool_const,
            ast.Not: _not,
            ast.And: _and,
            ast.Or: _or,
        },
    )

    def product(self, left: DNF, right: DNF) -> DNF:
        self.spend(len(left) * len(right))
        result = []
        for a in left:
            for b in right:
                merged = a.merge(b)
                if merged.status is not _UNSAT:
                    result.append(merged)
                    if len(result) > MAX_CONJUNCTIONS:
                        raise TooBig("normal form too large")
        return result

    def satisfiability(self, left: DNF, right: DNF) -> Sat:
        """Of (left and right): SAT if some pair surely is, UNSAT if every pair surely is not."""
        self.spend(len(left) * len(right))
        status = _UNSAT
        for a in left:
            for b in right:
                result = a.status_with(b)
                if result is _SAT:
                    return _SAT
                if result is _UNKNOWN:
                    status = _UNKNOWN
        return status


# ---------------------------------------------------------------------------
# The analysis.
# ---------------------------------------------------------------------------


def _name(rule: ast.Rule) -> str:
    if rule.label is not None:
        return f"`{rule.label}` (line {rule.span.line})"
    if rule.is_otherwise:
        return f"`otherwise` on line {rule.span.line}"
    return f"the rule on line {rule.span.line}"


def _names(rules: list[ast.Rule]) -> str:
    listed = [_name(r) for r in rules]
    if len(listed) > 3:
        listed = listed[:3] + [f"{len(listed) - 3} more"]
    return ", ".join(listed[:-1]) + " and " + listed[-1] if len(listed) > 1 else listed[0]


def _span_of(condition: ast.Condition, fallback: ast.Span) -> ast.Span:
    return condition.span if condition.span.line else fallback


Signature = dict[str, frozenset[str]]


def _signature(positive: DNF | None) -> Signature:
    """Fields the condition pins to a finite set of words in every conjunction (a cheap disjointness test)."""
    if not positive:
        return {}
    signature: Signature = {}
    first, rest = positive[0], positive[1:]
    for name in first.fields:
        words: set[str] = set()
        for conjunction in (first, *rest):
            pinned = _pinned_words(conjunction.fields.get(name))
            if pinned is None:
                break
            words |= pinned
        else:
            signature[name] = frozenset(words)
    return signature


def _pinned_words(state: FieldState | None) -> frozenset[str] | None:
    if not isinstance(state, ScalarState) or state.domain.has_non_text_value():
        return None
    words = state.domain.words
    return words.values if words is not None and words.finite else None


@dataclass
class _TeamRule:
    rule: ast.Rule
    positive: DNF | None
    negative: DNF | None
    contradictory: bool
    shadowed: bool = False
    signature: Signature = field(default_factory=dict)

    def surely_disjoint(self, other: _TeamRule) -> bool:
        return any(name in other.signature and not words & other.signature[name] for name, words in self.signature.items())


@dataclass
class _Index:
    """Earlier team rules by the words their signature pins, to skip surely disjoint pairs."""

    rules: list[_TeamRule] = field(default_factory=list)
    by_word: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    unpinned: dict[str, list[int]] = field(default_factory=dict)

    def add(self, team_rule: _TeamRule) -> None:
        position = len(self.rules)
        self.rules.append(team_rule)
        for name in set(self.by_word) | set(team_rule.signature):
            if name not in self.by_word:  # a field no earlier rule pinned: all of them are unpinned on it
                self.by_word[name] = {}
                self.unpinned[name] = list(range(position))
            if name in team_rule.signature:
                for word in team_rule.signature[name]:
                    self.by_word[name].setdefault(word, []).append(position)
            else:
                self.unpinned.setdefault(name, []).append(position)

    def candidates(self, later: _TeamRule) -> list[_TeamRule]:
        """Earlier (non-contradictory) rules that may match a customer `later` matches, in file order."""
        pinned = [name for name in later.signature if name in self.by_word]
        if pinned:
            name = min(pinned, key=lambda n: len(later.signature[n]))
            positions = set(self.unpinned.get(name, ()))
            for word in later.signature[name]:
                positions.update(self.by_word[name].get(word, ()))
            chosen = [self.rules[p] for p in sorted(positions)]
        else:
            chosen = list(self.rules)
        return [r for r in chosen if not r.contradictory and not later.surely_disjoint(r)]


def analyse(rule_file: ast.RuleFile) -> list[Diagnostic]:
    """Warnings `contradiction` and `shadowed-rule`, infos `overlap`, for a file without errors."""
    segments = {s.name: s.condition for s in rule_file.statements if isinstance(s, ast.SegmentDef)}
    normalizer = _Normalizer(segments)
    diagnostics: list[Diagnostic] = []
    try:
        team_rules = _contradictions(rule_file, normalizer, diagnostics)
        _shadowing_and_overlaps(team_rules, normalizer, diagnostics)
    except TooBig:
        pass  # what was found before the budget ran out is certain; the rest goes unsaid
    diagnostics.sort(key=lambda d: (d.line, d.column))
    return diagnostics


def _normal_forms(normalizer: _Normalizer, condition: ast.Condition) -> tuple[DNF | None, DNF | None]:
    forms: list[DNF | None] = []
    for positive in (True, False):
        try:
            forms.append(normalizer.dnf(condition, positive))
        except TooBig:
            if normalizer.work > MAX_WORK:
                raise
            forms.append(None)
    return forms[0], forms[1]


def _contradictions(rule_file: ast.RuleFile, normalizer: _Normalizer, diagnostics: list[Diagnostic]) -> list[_TeamRule]:
    team_rules: list[_TeamRule] = []
    for statement in rule_file.statements:
        condition = statement.condition
        if condition is None:  # otherwise
            assert isinstance(statement, ast.Rule)
            if statement.team is not None:
                team_rules.append(_TeamRule(statement, [TOP], [], False))
            continue
        positive, negative = _normal_forms(normalizer, condition)
        contradictory = positive == [] and not (isinstance(condition, ast.BoolConst) and not condition.value)
        if contradictory:
            what = statement.display_name if isinstance(statement, ast.SegmentDef) else _name(statement)
            diagnostics.append(
                Diagnostic.at(
                    _span_of(condition, statement.span),
                    "warning",
                    "contradiction",
                    f"the condition of {what} can never hold: no customer satisfies all of it",
                    hint="check the ranges and values combined with `and`",
                )
            )
        if isinstance(statement, ast.Rule) and statement.team is not None:
            team_rules.append(_TeamRule(statement, positive, negative, positive == []))
    return team_rules


def _shadowing_and_overlaps(team_rules: list[_TeamRule], normalizer: _Normalizer, diagnostics: list[Diagnostic]) -> None:
    remaining: DNF | None = [TOP]  # customers no earlier team rule takes
    index = _Index()
    for later in team_rules:
        later.signature = _signature(later.positive)
        if not later.contradictory and later.positive is not None and index.rules:
            pairs = [
                (r, _UNKNOWN if r.positive is None else normalizer.satisfiability(later.positive, r.positive))
                for r in index.candidates(later)
            ]
            candidates = [r for r, status in pairs if status is not _UNSAT]
            covering = _covering(later, candidates, remaining, normalizer)
            if covering is not None:
                later.shadowed = True
                names, verb = covering
                diagnostics.append(
                    Diagnostic.at(
                        later.rule.span,
                        "warning",
                        "shadowed-rule",
                        f"{_name(later.rule)} can never decide a team: {names} already {verb} every customer it could match",
                        hint="move it above the rule that covers it, or narrow that rule",
                    )
                )
            elif not later.rule.is_otherwise:
                _overlap(later, [r for r, status in pairs if status is _SAT], diagnostics)
        if remaining is not None:
            try:
                remaining = None if later.negative is None else normalizer.product(remaining, later.negative)
            except TooBig:
                if normalizer.work > MAX_WORK:
                    raise
                remaining = None
        index.add(later)


def _covering(
    later: _TeamRule, candidates: list[_TeamRule], remaining: DNF | None, normalizer: _Normalizer
) -> tuple[str, str] | None:
    """Who takes every customer `later` could match (names, verb), or None when not certain."""
    assert later.positive is not None
    if not candidates:
        return None
    for candidate in candidates:
        if candidate.negative is not None and normalizer.satisfiability(later.positive, candidate.negative) is _UNSAT:
            return _name(candidate.rule), "takes"
    if remaining is not None and normalizer.satisfiability(later.positive, remaining) is _UNSAT:
        return "together " + _names([c.rule for c in candidates]), "take"
    return None


def _overlap(later: _TeamRule, surely_overlapping: list[_TeamRule], diagnostics: list[Diagnostic]) -> None:
    overlapping = [r for r in surely_overlapping if not r.shadowed and r.rule.team != later.rule.team]
    if overlapping:
        first = overlapping[0]
        others = f" (and {len(overlapping) - 1} more earlier rule(s))" if len(overlapping) > 1 else ""
        diagnostics.append(
            Diagnostic.at(
                later.rule.span,
                "info",
                "overlap",
                f"{_name(later.rule)} (team {later.rule.team}) can match the same customers as "
                f"{_name(first.rule)} (team {first.rule.team}){others}; the earlier rule decides for them",
            )
        )
