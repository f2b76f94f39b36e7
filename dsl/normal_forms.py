"""Conditions in disjunctive normal form over literals, for the static analysis (dsl.analysis).

A literal is a predicate or its exact complement (the rule language makes `not p`
the complement of `p`, missing values included: docs/rule-language.md, 'Conditions').
Each conjunction keeps, per field, the exact set of values the field may still take
(dsl.value_sets), or for set fields the words it must and must not contain and
whether it is present.  A conjunction is unsatisfiable when some field has no value
left; fields are treated as independent, which only ever adds customers, so
"unsatisfiable" is certain.  What cannot be decided exactly (text ordering, `like`
patterns against an open set of words, fields derived from each other) is UNKNOWN.
Normal forms and the total work are capped (TooBig).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

from segmenta.dsl import ast
from segmenta.dsl.ast import NodeTable
from segmenta.dsl.fields import FieldSpec, lookup, rank
from segmenta.dsl.like import like_regex
from segmenta.dsl.python_compiler import pattern_text
from segmenta.dsl.value_sets import (
    ALL_WORDS,
    INF,
    Domain,
    Interval,
    Intervals,
    Words,
    empty_domain,
    replaced,
    union,
    universe,
)

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
    nothing = empty_domain(spec)
    if spec.kind == "ordered" and op != "=":
        position = rank(spec, literal.value) if literal.kind == "text" else None
        if position is None:
            return nothing
        compare = {"<": int.__lt__, "<=": int.__le__, ">": int.__gt__, ">=": int.__ge__}[op]
        words = frozenset(w for i, w in enumerate(spec.values) if compare(i, position))
        return replaced(nothing, words=Words(True, words))
    if literal.kind == "text":
        if whole.words is None:
            return nothing
        if op == "=":
            return replaced(nothing, words=Words(True, frozenset({literal.value})))  # type: ignore[arg-type]
        bound: str = literal.value  # type: ignore[assignment]
        return {"<": lambda s: s < bound, "<=": lambda s: s <= bound, ">": lambda s: s > bound, ">=": lambda s: s >= bound}[op]
    if literal.kind == "number":
        if whole.numbers is None:
            return nothing
        return replaced(nothing, numbers=Intervals.of(_number_interval(op, float(literal.value)), False))  # type: ignore[arg-type]
    if literal.kind == "date":
        if whole.days is None:
            return nothing
        ordinal = float(literal.value.toordinal())  # type: ignore[union-attr]
        return replaced(nothing, days=Intervals.of(_number_interval(op, ordinal), True))
    return nothing  # no field holds booleans


def _between_domain(spec: FieldSpec, between: ast.Between) -> Domain | TextTest:
    low, high = between.low, between.high
    nothing = empty_domain(spec)
    if low.kind != high.kind:
        return nothing
    if spec.kind == "ordered":
        low_rank = rank(spec, low.value) if low.kind == "text" else None
        high_rank = rank(spec, high.value) if high.kind == "text" else None
        if low_rank is None or high_rank is None:
            return nothing
        words = frozenset(w for i, w in enumerate(spec.values) if low_rank <= i <= high_rank)
        return replaced(nothing, words=Words(True, words))
    above = _literal_domain(spec, ">=", low)
    below = _literal_domain(spec, "<=", high)
    if isinstance(above, Domain) and isinstance(below, Domain):
        return above.intersect(below)
    if low.kind == "text":
        lo, hi = str(low.value), str(high.value)
        return lambda s: lo <= s <= hi
    return nothing


def _in_domain(spec: FieldSpec, in_list: ast.InList) -> Domain:
    result = empty_domain(spec)
    for value in in_list.values:
        member = _literal_domain(spec, "=", value)
        assert isinstance(member, Domain)
        result = union(result, member)
    return result


def _scalar_literal(spec: FieldSpec, satisfying: Domain | TextTest, positive: bool) -> ScalarState:
    if isinstance(satisfying, Domain):
        return ScalarState(satisfying if positive else satisfying.complement())
    # An undecidable text test: when positive the value must be text that passes it.
    if positive:
        return ScalarState(replaced(empty_domain(spec), words=ALL_WORDS), ((satisfying, True),))
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
    missing_only = replaced(empty_domain(spec), missing=True)
    wants_missing = (not predicate.present) == positive
    return ScalarState(missing_only if wants_missing else missing_only.complement())


def _scalar_contains(spec: FieldSpec, predicate: ast.Contains, positive: bool) -> ScalarState:
    return ScalarState(empty_domain(spec) if positive else universe(spec))


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
        satisfying: Domain | TextTest = replaced(empty_domain(spec), words=Words(True, frozenset({pattern})))
    else:
        matcher = like_regex(pattern).fullmatch
        satisfying = lambda s: matcher(s) is not None  # noqa: E731
    if spec.kind not in ("text", "ordered", "attribute"):
        satisfying = empty_domain(spec)
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
class Normalizer:
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
