"""Compile rule conditions and whole rule files to SQLAlchemy Core expressions (docs/sql-compilation.md).

The compiler never touches a database session: it asks a `SqlFieldSource` for the
column (or subquery) behind each field and returns expressions that a caller
selects, filters on or inserts from.  The semantics are exactly those of the
Python evaluator:

* two-valued logic: every compiled predicate is TRUE or FALSE, never SQL NULL, so
  `p` and `NOT p` partition the customers (a comparison on a missing value is
  false; `!=` and `not in` are the exact complements of `=` and `in`);
* literals are always bound parameters, never spliced into SQL text;
* dates compare by calendar day and day-based metrics are turned into range
  tests on the stored date they are measured from, against the constant
  `as_of`, so ordinary indexes serve them.

See docs/sql-compilation.md for the translation table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any, ClassVar, Protocol

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    String,
    and_,
    case,
    cast,
    false,
    literal,
    not_,
    null,
    or_,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, BooleanClauseList, ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from segmenta.dsl.ast import (
    And,
    Between,
    BoolConst,
    Comparison,
    Condition,
    Contains,
    FieldRef,
    InList,
    Like,
    NodeTable,
    Not,
    Or,
    Presence,
    RuleFile,
    SegmentDef,
    SegmentRef,
    Span,
    Value,
    ValueKind,
)
from segmenta.dsl.diagnostics import Diagnostic, RuleError
from segmenta.dsl.fields import ATTRIBUTE_PREFIX, FieldSpec, days_to_birthday, lookup, naive_utc, rank

# ---------------------------------------------------------------------------
# What the compiler needs from the storage layer
# ---------------------------------------------------------------------------


class SqlFieldSource(Protocol):
    """The SQL behind each rule field, for one customer row (correlated where needed)."""

    def column(self, name: str) -> ColumnElement[Any]:
        """A scalar field (text, ordered, number or date, stored or computed); NULL when missing."""
        ...

    def set_contains(self, name: str, value: ColumnElement[str]) -> ColumnElement[bool]:
        """`name contains value` for a set field; never NULL."""
        ...

    def set_present(self, name: str) -> ColumnElement[bool]:
        """The set field is non-empty; never NULL."""
        ...

    def attribute_where(
        self, key: str, numeric: bool, predicate: Callable[[ColumnElement[Any]], ColumnElement[bool]]
    ) -> ColumnElement[bool]:
        """The customer has attribute `key` whose text (or number) value satisfies `predicate`; never NULL."""
        ...

    def attribute_present(self, key: str) -> ColumnElement[bool]:
        """The customer has attribute `key` (text or number); never NULL."""
        ...

    def day_source(self, metric: str) -> ColumnElement[Any]:
        """The stored Date/DateTime column a day-based metric is measured from."""
        ...

    def birthday_md(self) -> ColumnElement[int]:
        """month * 100 + day of the birthday (NULL when there is none)."""
        ...


@dataclass(frozen=True)
class SqlRuleset:
    """A rule file as SQL expressions over one customer row.

    `team` and `rule` are NULL when no team rule decided; `segments` and `tags` hold
    one never-NULL boolean per segment key and tag that some rule can produce.
    """

    team: ColumnElement[Any]
    rule: ColumnElement[Any]
    segments: dict[str, ColumnElement[bool]]
    tags: dict[str, ColumnElement[bool]]


EMPTY_SEGMENTS: Mapping[str, ColumnElement[bool]] = MappingProxyType({})


def compile_condition(
    condition: Condition,
    fields: SqlFieldSource,
    *,
    as_of: datetime,
    segments: Mapping[str, ColumnElement[bool]] = EMPTY_SEGMENTS,
) -> ColumnElement[bool]:
    """One condition as a never-NULL boolean expression; segment references use `segments`."""
    return _SqlConditionCompiler(fields, as_of, segments).compile(condition)


def compile_ruleset(rule_file: RuleFile, fields: SqlFieldSource, *, as_of: datetime) -> SqlRuleset:
    """Team, deciding rule, segments and tags of a whole (checked) rule file."""
    parts = _compile_parts(rule_file, fields, as_of)
    whens = [(when.lean, when.team, when.rule) for when in parts.team_whens]
    return SqlRuleset(
        team=_first_match(whens, 1, parts.otherwise),
        rule=_first_match(whens, 2, parts.otherwise),
        segments={key: _any(conditions) for key, conditions in parts.segment_parts.items()},
        tags={key: _any(conditions) for key, conditions in parts.tag_parts.items()},
    )


@dataclass(frozen=True)
class _TeamWhen:
    lean: ColumnElement[bool]
    team: str
    rule: str
    position: int  # of the statement in the file


@dataclass(frozen=True)
class _LabelSource:
    """A statement that gives a segment or tag, and what the first-match CASE tells about it.

    `when`: the index of the team WHEN whose condition this is; `otherwise_position`:
    set for `otherwise` statements (their condition is "no earlier team rule matched",
    known in every branch); otherwise the lean condition must be evaluated.
    """

    lean: ColumnElement[bool] | None
    when: int | None = None
    otherwise_position: int | None = None


@dataclass
class _Parts:
    team_whens: list[_TeamWhen] = field(default_factory=list)
    otherwise: tuple[str, str] | None = None  # (team, display name) of the first team `otherwise`
    otherwise_position: int | None = None
    segment_parts: dict[str, list[ColumnElement[bool]]] = field(default_factory=dict)  # strict conditions
    tag_parts: dict[str, list[ColumnElement[bool]]] = field(default_factory=dict)
    label_sources: dict[tuple[str, str], list[_LabelSource]] = field(default_factory=dict)


def _compile_parts(rule_file: RuleFile, fields: SqlFieldSource, as_of: datetime) -> _Parts:
    parts = _Parts()
    segment_conditions: dict[str, ColumnElement[bool]] = {}
    lean_segment_conditions: dict[str, ColumnElement[bool]] = {}
    earlier_team_conditions: list[ColumnElement[bool]] = []
    strict = _SqlConditionCompiler(fields, as_of, segment_conditions)
    lean = _SqlConditionCompiler(fields, as_of, lean_segment_conditions, strict=strict)

    for position, statement in enumerate(rule_file.statements):
        if isinstance(statement, SegmentDef):
            condition = strict.compile(statement.condition)
            lean_segment_conditions[statement.name] = lean.compile(statement.condition)
            segment_conditions[statement.name] = condition
            parts.segment_parts.setdefault(statement.name, []).append(condition)
            parts.label_sources.setdefault(("segment", statement.name), []).append(
                _LabelSource(lean_segment_conditions[statement.name])
            )
            continue
        if statement.condition is not None:
            condition = strict.compile(statement.condition)
        elif earlier_team_conditions:  # `otherwise`: exactly the customers no earlier team rule took
            condition = not_(_any(earlier_team_conditions))
        else:
            condition = true()
        team = statement.team
        deciding = team is not None and parts.otherwise is None and statement.condition is not None
        if deciding:
            # Only CASE reads this one, and CASE takes NULL as not matched: the lean form suffices.
            parts.team_whens.append(
                _TeamWhen(lean.compile(statement.condition), team, statement.display_name, position)  # type: ignore[arg-type]
            )
        labels = [(action.kind, action.target) for action in statement.actions if action.kind in ("segment", "tag")]
        if labels:
            if statement.condition is None:
                source = _LabelSource(None, otherwise_position=position)
            elif deciding:
                source = _LabelSource(parts.team_whens[-1].lean, when=len(parts.team_whens) - 1)
            else:
                source = _LabelSource(lean.compile(statement.condition))
            for kind, target in labels:
                (parts.segment_parts if kind == "segment" else parts.tag_parts).setdefault(target, []).append(condition)
                parts.label_sources.setdefault((kind, target), []).append(source)
        if team is None:
            continue
        if parts.otherwise is None and statement.is_otherwise:
            parts.otherwise = (team, statement.display_name)
            parts.otherwise_position = position
        earlier_team_conditions.append(condition)
    return parts


# ---------------------------------------------------------------------------
# Every output of a rule file as one integer per customer
# ---------------------------------------------------------------------------

# Bits per code column: SQLite and PostgreSQL (BIGINT) integers are signed 64-bit.
CODE_BITS = 62


@dataclass(frozen=True)
class DecidingRule:
    """A team rule that can decide: its team key and display name."""

    team: str
    rule: str


@dataclass(frozen=True)
class BitPosition:
    column: int  # index into PackedOutcome.codes
    mask: int


@dataclass(frozen=True)
class PackedOutcome:
    """Team decision, segments and tags of a rule file packed into integers (one per customer).

    `codes[0]` is ``extra + (decision << extra_bits) + label bits``: `decision` is
    0 when no team rule decides, else the 1-based index into `decisions`; `extra`
    is the caller's per-decision value (see `compile_packed`).  Labels that do not
    fit into `codes[0]` continue in `codes[1]`, … (label bits only).  Every code is
    one first-match CASE over the team rules: in the branch of rule k, the
    conditions of the team rules before k are known false and k's known true, so a
    tag or segment given by a team rule costs nothing there, and every other
    condition is evaluated at most once per customer.
    """

    codes: tuple[ColumnElement[int], ...]
    decisions: tuple[DecidingRule, ...]
    extra_bits: int
    decision_bits: int
    segments: dict[str, BitPosition]
    tags: dict[str, BitPosition]

    def decision(self, code: int) -> int:
        return (code >> self.extra_bits) & ((1 << self.decision_bits) - 1)

    def extra(self, code: int) -> int:
        return code & ((1 << self.extra_bits) - 1)

    def decision_of(self, decision: int) -> DecidingRule | None:
        return None if decision == 0 else self.decisions[decision - 1]

    @staticmethod
    def has(codes: Sequence[int], position: BitPosition) -> bool:
        return bool(codes[position.column] & position.mask)


def compile_packed(
    rule_file: RuleFile,
    fields: SqlFieldSource,
    *,
    as_of: datetime,
    extra: Callable[[DecidingRule | None], ColumnElement[int]] | None = None,
    extra_bits: int = 0,
) -> PackedOutcome:
    """The rule file's outcome as `PackedOutcome` codes.

    `extra(decision)`, when given, is an integer expression in [0, 2**extra_bits)
    added to `codes[0]` in the branch where `decision` decides (None: no team rule
    decides): the caller can compare the customer's stored state with that outcome
    without evaluating the rules again.
    """
    if extra is not None and extra_bits <= 0:
        raise ValueError("extra needs extra_bits > 0")
    parts = _compile_parts(rule_file, fields, as_of)
    decisions = [DecidingRule(when.team, when.rule) for when in parts.team_whens]
    if parts.otherwise is not None:
        decisions.append(DecidingRule(*parts.otherwise))
    decision_bits = len(decisions).bit_length()
    labels = list(parts.label_sources)
    first_free = extra_bits + decision_bits
    if first_free >= CODE_BITS:
        raise ValueError("too many team rules to pack")
    positions: dict[tuple[str, str], BitPosition] = {}
    column, bit = 0, first_free
    for label in labels:
        if bit == CODE_BITS:
            column, bit = column + 1, 0
        positions[label] = BitPosition(column, 1 << bit)
        bit += 1
    codes = []
    for index in range(column + 1):
        in_column = [(parts.label_sources[label], positions[label].mask) for label in labels if positions[label].column == index]
        codes.append(
            _packed_code(parts, decisions, in_column, extra if index == 0 else None, extra_bits if index == 0 else None)
        )
    return PackedOutcome(
        codes=tuple(codes),
        decisions=tuple(decisions),
        extra_bits=extra_bits,
        decision_bits=decision_bits,
        segments={key: position for (kind, key), position in positions.items() if kind == "segment"},
        tags={key: position for (kind, key), position in positions.items() if kind == "tag"},
    )


def _known(parts: _Parts, source: _LabelSource, branch: int | None) -> bool | None:
    """The source's condition in the branch where team WHEN `branch` matched (None: no WHEN matched)."""
    if source.when is not None:
        if branch is None or source.when < branch:
            return False
        return True if source.when == branch else None
    if source.otherwise_position is not None:
        if branch is None:  # no team rule matched, unless an earlier `otherwise` took the customer
            return parts.otherwise_position is None or parts.otherwise_position >= source.otherwise_position
        # The deciding rule is a team rule before this `otherwise` (then it does not apply) or after it.
        return parts.team_whens[branch].position > source.otherwise_position
    return None


def _packed_code(
    parts: _Parts,
    decisions: Sequence[DecidingRule],
    labels: Sequence[tuple[list[_LabelSource], int]],
    extra: Callable[[DecidingRule | None], ColumnElement[int]] | None,
    extra_bits: int | None,
) -> ColumnElement[int]:
    def branch_value(branch: int | None) -> ColumnElement[int]:
        constant = 0
        terms: list[ColumnElement[int]] = []
        if extra_bits is not None:
            decision = (len(parts.team_whens) + 1 if parts.otherwise is not None else 0) if branch is None else branch + 1
            constant = decision << extra_bits
            if extra is not None:
                terms.append(extra(decisions[decision - 1] if decision else None))
        for sources, mask in labels:
            known = [_known(parts, source, branch) for source in sources]
            if any(value is True for value in known):
                constant |= mask
                continue
            unknown = [source.lean for source, value in zip(sources, known, strict=True) if value is None]
            if unknown:
                # CASE WHEN takes a NULL lean condition as not matched, exactly as FALSE.
                terms.append(case((_any(unknown), literal(mask, BigInteger)), else_=literal(0, BigInteger)))  # type: ignore[arg-type]
        value: ColumnElement[int] = literal(constant, BigInteger)
        for term in terms:
            value = value + term
        return value

    if not parts.team_whens:
        return branch_value(None)
    return case(
        *[(when.lean, branch_value(index)) for index, when in enumerate(parts.team_whens)],
        else_=branch_value(None),
    )


def _first_match(
    whens: Sequence[tuple[ColumnElement[bool], str, str]], index: int, otherwise: tuple[str, str] | None
) -> ColumnElement[Any]:
    # A typed NULL: PostgreSQL cannot infer a type for a bare NULL in some contexts (e.g. a CASE of NULLs).
    fallback: ColumnElement[Any] = cast(null(), String) if otherwise is None else literal(otherwise[index - 1], String)
    if not whens:
        return fallback
    return case(*[(when[0], literal(when[index], String)) for when in whens], else_=fallback)


# SQLite refuses an expression tree deeper than 1,000 and reads `a OR b OR … OR z` as a chain as
# deep as its terms, while SQLAlchemy flattens nested ORs (and ANDs) into one such chain, even
# through its own parentheses: a segment used four times in each of five nested segments became a
# chain of 1,024 terms.  Long lists are therefore cut into groups in parentheses SQLAlchemy keeps,
# and a nested list of the same operator keeps its own, so depth grows with nesting, not terms.
_GROUP_SIZE = 32


class _Parenthesised(ColumnElement[bool]):
    """A condition in parentheses that SQLAlchemy does not flatten into the list around it."""

    __visit_name__ = "segmenta_parenthesised"
    inherit_cache = True
    type = Boolean()
    _traverse_internals = [("element", InternalTraversal.dp_clauseelement)]

    def __init__(self, element: ColumnElement[bool]) -> None:
        self.element = element


@compiles(_Parenthesised)
def _compile_parenthesised(element: _Parenthesised, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.element, **kw)})"


def _combined(combine: Callable[..., ColumnElement[bool]], parts: Sequence[ColumnElement[bool]]) -> ColumnElement[bool]:
    """`combine(*parts)` (or_ / and_) whose SQL stays shallow however many or nested the parts."""
    if len(parts) == 1:
        return parts[0]
    if len(parts) > _GROUP_SIZE:
        groups = [parts[start : start + _GROUP_SIZE] for start in range(0, len(parts), _GROUP_SIZE)]
        return _combined(combine, [_Parenthesised(_combined(combine, group)) for group in groups])
    return combine(*[_Parenthesised(part) if isinstance(part, BooleanClauseList) else part for part in parts])


def _any(parts: Sequence[ColumnElement[bool]]) -> ColumnElement[bool]:
    return _combined(or_, parts)


def _all(parts: Sequence[ColumnElement[bool]]) -> ColumnElement[bool]:
    return _combined(and_, parts)


# ---------------------------------------------------------------------------
# Dialect-aware constructs
# ---------------------------------------------------------------------------

LIKE_ESCAPE = "!"


def like_pattern(pattern: str) -> str:
    """Rule `like` pattern as an SQL LIKE pattern with escape character `!`."""
    out: list[str] = []
    for char in pattern:
        if char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        elif char in ("%", "_", LIKE_ESCAPE):
            out.append(LIKE_ESCAPE + char)
        else:
            out.append(char)
    return "".join(out)


def glob_pattern(pattern: str) -> str:
    """Rule `like` pattern as an SQLite GLOB pattern (`[` is the only other GLOB metacharacter)."""
    return "".join("[[]" if char == "[" else char for char in pattern)


class CaseSensitiveMatch(ColumnElement[bool]):
    """`value like "pattern"`: GLOB on SQLite (its LIKE ignores ASCII case), LIKE … ESCAPE elsewhere.

    Both dialect spellings of the pattern travel as bound parameters; only the
    one the dialect renders is sent.
    """

    __visit_name__ = "segmenta_case_sensitive_match"
    inherit_cache = True
    type = Boolean()
    _traverse_internals = [
        ("value", InternalTraversal.dp_clauseelement),
        ("glob", InternalTraversal.dp_clauseelement),
        ("like_param", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, value: ColumnElement[Any], pattern: str) -> None:
        self.value = value
        self.glob: BindParameter[str] = literal(glob_pattern(pattern), String)
        # Not `like`: that would shadow ColumnElement.like().
        self.like_param: BindParameter[str] = literal(like_pattern(pattern), String)


@compiles(CaseSensitiveMatch)
def _compile_match(element: CaseSensitiveMatch, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.value.like(element.like_param, escape=LIKE_ESCAPE), **kw)})"


@compiles(CaseSensitiveMatch, "sqlite")
def _compile_match_sqlite(element: CaseSensitiveMatch, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.value, **kw)} GLOB {compiler.process(element.glob, **kw)})"


class CodepointText(ColumnElement[str]):
    """Text compared by code point, as Python compares strings.

    SQLite's default BINARY collation already does so on UTF-8; PostgreSQL needs
    the "C" collation (byte order of UTF-8 is code-point order).
    """

    __visit_name__ = "segmenta_codepoint_text"
    inherit_cache = True
    type = String()
    _traverse_internals = [("element", InternalTraversal.dp_clauseelement)]

    def __init__(self, element: ColumnElement[Any]) -> None:
        self.element = element


@compiles(CodepointText)
def _compile_codepoint(element: CodepointText, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.element, **kw)


@compiles(CodepointText, "postgresql")
def _compile_codepoint_postgresql(element: CodepointText, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.element, **kw)} COLLATE "C")'


# ---------------------------------------------------------------------------
# Day arithmetic
# ---------------------------------------------------------------------------

# Whole days that can separate two datetimes (year 1 to 9999), with margin; clamping
# literals to this range keeps floor/ceil and timedelta finite without changing results.
_DAY_LIMIT = 10_000_000.0

IntInterval = tuple[int | None, int | None]  # inclusive; None is unbounded


def _clamp(number: float) -> float:
    return max(-_DAY_LIMIT, min(_DAY_LIMIT, number))


def _integer_interval(op: str, number: float) -> IntInterval | None:
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


def _between_interval(low: float, high: float) -> IntInterval | None:
    if math.isnan(low) or math.isnan(high):
        return None
    first, last = math.ceil(_clamp(low)), math.floor(_clamp(high))
    return (first, last) if first <= last else None


def _in_interval(number: int, interval: IntInterval) -> bool:
    low, high = interval
    return (low is None or number >= low) and (high is None or number <= high)


class _Unbounded:
    """A bound beyond every representable instant (before all, or after all)."""

    def __init__(self, after_all: bool) -> None:
        self.after_all = after_all


_BEFORE_ALL = _Unbounded(after_all=False)
_AFTER_ALL = _Unbounded(after_all=True)


def _days_before(as_of: datetime, days: int) -> datetime | _Unbounded:
    try:
        return as_of - timedelta(days=days)
    except OverflowError:
        return _BEFORE_ALL if days > 0 else _AFTER_ALL


def _next_day(day: date) -> date | None:
    try:
        return day + timedelta(days=1)
    except OverflowError:
        return None


# Every month-day a birthday can have, in calendar order (a leap year holds them all).
_ALL_MONTH_DAYS: tuple[date, ...] = tuple(date(2000, 1, 1) + timedelta(days=offset) for offset in range(366))


def _month_day(day: date) -> int:
    return day.month * 100 + day.day


# ---------------------------------------------------------------------------
# The condition compiler
# ---------------------------------------------------------------------------


def _error(span: Span, code: str, message: str, hint: str | None = None) -> RuleError:
    return RuleError([Diagnostic.at(span, "error", code, message, hint)])


def _present_and(value: ColumnElement[Any], predicate: ColumnElement[bool]) -> ColumnElement[bool]:
    """`predicate` made two-valued: FALSE AND NULL is FALSE, so a NULL `value` yields FALSE."""
    return and_(value.is_not(None), predicate)


def _bind(value: Value) -> BindParameter[Any]:
    if value.kind == "number":
        return literal(float(value.value), Float)  # type: ignore[arg-type]
    if value.kind == "date":
        return literal(value.value, Date)
    return literal(str(value.value), String)


_TEXT_OPS: dict[str, Callable[[ColumnElement[Any], ColumnElement[Any]], ColumnElement[bool]]] = {
    "<": lambda left, right: left < right,
    "<=": lambda left, right: left <= right,
    ">": lambda left, right: left > right,
    ">=": lambda left, right: left >= right,
}


class _SqlConditionCompiler:
    """Compiles conditions; two-valued unless given a `strict` partner.

    A lean compiler (one with a strict partner) leaves out the `IS NOT NULL` guards
    where no negation is above them.  With only AND and OR above, a NULL operand can
    make the result NULL only where it would be FALSE with the operand FALSE, so a
    context that takes NULL as not matched (CASE WHEN, WHERE) sees the same result.
    Every negated operand is compiled by the strict partner.
    """

    def __init__(
        self,
        fields: SqlFieldSource,
        as_of: datetime,
        segments: Mapping[str, ColumnElement[bool]],
        strict: _SqlConditionCompiler | None = None,
    ) -> None:
        self._fields = fields
        self._as_of = naive_utc(as_of)
        self._segments = segments
        self._strict = strict if strict is not None else self

    def _guard(self, value: ColumnElement[Any], predicate: ColumnElement[bool]) -> ColumnElement[bool]:
        return _present_and(value, predicate) if self._strict is self else predicate

    def compile(self, condition: Condition) -> ColumnElement[bool]:
        return self._CASES[type(condition)](self, condition)

    def _bool_const(self, condition: BoolConst) -> ColumnElement[bool]:
        return true() if condition.value else false()

    def _not(self, condition: Not) -> ColumnElement[bool]:
        return not_(self._strict.compile(condition.operand))

    def _and(self, condition: And) -> ColumnElement[bool]:
        return _all([self.compile(operand) for operand in condition.operands])

    def _or(self, condition: Or) -> ColumnElement[bool]:
        return _any([self.compile(operand) for operand in condition.operands])

    def _contains(self, condition: Contains) -> ColumnElement[bool]:
        if self._spec(condition.subject).kind != "set" or condition.value.kind != "text":
            return false()
        return self._fields.set_contains(condition.subject.name, _bind(condition.value))

    def _segment_ref(self, condition: SegmentRef) -> ColumnElement[bool]:
        if condition.name not in self._segments:
            raise _error(condition.span, "unknown-segment", f"no segment `{condition.name}` is defined before here")
        return self._segments[condition.name]

    def _presence_test(self, condition: Presence) -> ColumnElement[bool]:
        present = self._presence(condition.subject)
        return present if condition.present else not_(present)

    def _comparison(self, condition: Comparison) -> ColumnElement[bool]:
        if condition.op == "!=":
            return not_(self._strict._predicate(condition.subject, "=", [condition.value]))
        return self._predicate(condition.subject, condition.op, [condition.value])

    def _in_list(self, condition: InList) -> ColumnElement[bool]:
        if condition.negated:
            return not_(self._strict._predicate(condition.subject, "in", list(condition.values)))
        return self._predicate(condition.subject, "in", list(condition.values))

    def _between(self, condition: Between) -> ColumnElement[bool]:
        return self._predicate(condition.subject, "between", [condition.low, condition.high])

    def _like_test(self, condition: Like) -> ColumnElement[bool]:
        return self._predicate(condition.subject, "like", [condition.pattern])

    _CASES: ClassVar[NodeTable[Callable[[Any, Any], ColumnElement[bool]]]] = NodeTable(
        "SQL compiler",
        {
            Comparison: _comparison,
            InList: _in_list,
            Between: _between,
            Like: _like_test,
            Contains: _contains,
            Presence: _presence_test,
            SegmentRef: _segment_ref,
            BoolConst: _bool_const,
            Not: _not,
            And: _and,
            Or: _or,
        },
    )

    # -- field dispatch -----------------------------------------------------

    def _spec(self, field: FieldRef) -> FieldSpec:
        spec = lookup(field.name)
        if spec is None:
            raise _error(field.span, "unknown-field", f"unknown field `{field.name}`")
        return spec

    def _presence(self, field: FieldRef) -> ColumnElement[bool]:
        spec = self._spec(field)
        if spec.kind == "set":
            return self._fields.set_present(field.name)
        if spec.kind == "attribute":
            return self._fields.attribute_present(field.name[len(ATTRIBUTE_PREFIX) :])
        if field.name == "days_to_birthday":
            return self._fields.birthday_md().is_not(None)
        if spec.derived:
            return self._fields.day_source(field.name).is_not(None)
        return self._fields.column(field.name).is_not(None)

    def _predicate(self, field: FieldRef, op: str, values: list[Value]) -> ColumnElement[bool]:
        """`field op values` without negation; op is a comparison, `in`, `between` or `like`.

        As in the Python evaluator, a literal compares only with stored values of its own
        kind (text, number, date): a literal of another kind never matches, like a missing value.
        """
        spec = self._spec(field)
        if op == "like":
            return self._like(spec, field, values[0])
        if op == "between" and values[0].kind != values[1].kind:
            return false()
        if spec.kind == "attribute":
            return self._attribute(field.name[len(ATTRIBUTE_PREFIX) :], op, values)
        comparable = [value for value in values if value.kind == _LITERAL_KIND.get(spec.kind)]
        if spec.derived:
            comparable = [value for value in values if value.kind == "number"]
        if not comparable or (len(comparable) < len(values) and op != "in"):
            return false()
        if field.name == "days_to_birthday":
            return self._birthday_offsets(self._day_intervals(op, comparable))
        if spec.derived:
            return self._day_metric(self._fields.day_source(field.name), self._day_intervals(op, comparable))
        column = self._fields.column(field.name)
        if spec.kind == "number":
            return self._number(column, op, comparable)
        if spec.kind == "date":
            return self._dates(column, op, comparable)
        if spec.kind == "ordered" and op in ("<", "<=", ">", ">=", "between"):
            return self._ordered(spec, column, op, comparable)
        return self._text(column, op, comparable)

    def _like(self, spec: FieldSpec, field: FieldRef, pattern: Value) -> ColumnElement[bool]:
        # The evaluator reads a non-text pattern by its source spelling (`code like 123`).
        text = pattern.value if isinstance(pattern.value, str) else pattern.raw
        if spec.kind == "attribute":
            key = field.name[len(ATTRIBUTE_PREFIX) :]
            return self._fields.attribute_where(key, False, lambda value: self._text(value, "like", [], text))
        if spec.kind not in ("text", "ordered"):
            return false()
        return self._text(self._fields.column(field.name), "like", [], text)

    # -- scalar kinds ---------------------------------------------------------

    def _text(
        self, column: ColumnElement[Any], op: str, values: list[Value], pattern: str = ""
    ) -> ColumnElement[bool]:
        if op == "like":
            return self._guard(column, CaseSensitiveMatch(column, pattern))
        if op == "=":
            return self._guard(column, column == _bind(values[0]))
        if op == "in":
            return self._guard(column, column.in_([str(value.value) for value in values]))
        ordered = CodepointText(column)
        if op == "between":
            return self._guard(column, and_(ordered >= _bind(values[0]), ordered <= _bind(values[1])))
        return self._guard(column, _TEXT_OPS[op](ordered, _bind(values[0])))

    def _number(self, column: ColumnElement[Any], op: str, values: list[Value]) -> ColumnElement[bool]:
        if op == "in":
            return self._guard(column, _any([column == _bind(value) for value in values]))
        if op == "between":
            return self._guard(column, and_(column >= _bind(values[0]), column <= _bind(values[1])))
        if op == "=":
            return self._guard(column, column == _bind(values[0]))
        return self._guard(column, _TEXT_OPS[op](column, _bind(values[0])))

    def _ordered(self, spec: FieldSpec, column: ColumnElement[Any], op: str, values: list[Value]) -> ColumnElement[bool]:
        """An order comparison as the IN-list of qualifying words (an index serves it)."""
        ranks = [rank(spec, str(value.value)) for value in values]
        if None in ranks:  # a word outside the declared order never satisfies an order test
            return false()
        if op == "between":
            qualifying = [word for index, word in enumerate(spec.values) if ranks[0] <= index <= ranks[1]]  # type: ignore[operator]
        else:
            qualifying = [word for index, word in enumerate(spec.values) if _ORDER_TESTS[op](index, ranks[0])]  # type: ignore[arg-type]
        if not qualifying:
            return false()
        return self._guard(column, column.in_(qualifying))

    def _dates(self, column: ColumnElement[Any], op: str, values: list[Value]) -> ColumnElement[bool]:
        days = [value.value for value in values]
        if op == "in":
            return _any([self._day_range(column, day, _next_day(day)) for day in days])  # type: ignore[arg-type]
        first: date = days[0]  # type: ignore[assignment]
        if op == "=":
            return self._day_range(column, first, _next_day(first))
        if op == "between":
            last: date = days[1]  # type: ignore[assignment]
            return false() if first > last else self._day_range(column, first, _next_day(last))
        if op == "<":
            return self._day_range(column, None, first)
        if op == "<=":
            return self._day_range(column, None, _next_day(first))
        if op == ">":
            following = _next_day(first)
            return false() if following is None else self._day_range(column, following, None)
        return self._day_range(column, first, None)

    def _day_range(self, column: ColumnElement[Any], start: date | None, end: date | None) -> ColumnElement[bool]:
        """Stored instant on a calendar day in [start, end); None is unbounded."""
        as_datetime = isinstance(column.type, DateTime)

        def bound(day: date) -> BindParameter[Any]:
            if as_datetime:
                return literal(datetime(day.year, day.month, day.day), DateTime)
            return literal(day, Date)

        tests: list[ColumnElement[bool]] = []
        if start is not None:
            tests.append(column >= bound(start))
        if end is not None:
            tests.append(column < bound(end))
        return self._guard(column, and_(*tests)) if tests else column.is_not(None)

    # -- day-based metrics ------------------------------------------------------

    @staticmethod
    def _day_intervals(op: str, values: list[Value]) -> list[IntInterval]:
        """The whole numbers of days satisfying `metric op values`, as a union of intervals."""
        numbers = [float(value.value) for value in values]  # type: ignore[arg-type]
        intervals: list[IntInterval | None]
        if op == "in":
            intervals = [_integer_interval("=", number) for number in numbers]
        elif op == "between":
            intervals = [_between_interval(numbers[0], numbers[1])]
        else:
            intervals = [_integer_interval(op, numbers[0])]
        return [interval for interval in intervals if interval is not None]

    def _day_metric(self, source: ColumnElement[Any], intervals: list[IntInterval]) -> ColumnElement[bool]:
        """floor((as_of - source) / 1 day) in one of `intervals`.

        n >= low  <=>  source <= as_of - low days;  n <= high  <=>  source > as_of - (high + 1) days.
        """
        as_date = not isinstance(source.type, DateTime)
        alternatives: list[ColumnElement[bool]] = []
        for low, high in intervals:
            tests: list[ColumnElement[bool]] = []
            if low is not None:
                latest = _days_before(self._as_of, low)
                if isinstance(latest, _Unbounded):
                    if not latest.after_all:
                        continue
                else:
                    tests.append(source <= self._instant(latest, as_date))
            if high is not None:
                earliest = _days_before(self._as_of, high + 1)
                if isinstance(earliest, _Unbounded):
                    if earliest.after_all:
                        continue
                else:
                    tests.append(source > self._instant(earliest, as_date))
            alternatives.append(self._guard(source, and_(*tests)) if tests else source.is_not(None))
        if not alternatives:
            return false()
        return _any(alternatives)

    @staticmethod
    def _instant(moment: datetime, as_date: bool) -> BindParameter[Any]:
        # A Date column holds midnights: midnight(D) <= t <=> D <= t.date(), and likewise for >.
        return literal(moment.date(), Date) if as_date else literal(moment, DateTime)

    def _birthday_offsets(self, intervals: list[IntInterval]) -> ColumnElement[bool]:
        """days_to_birthday in `intervals`, as ranges of month*100+day (in calendar order)."""
        offset_of = {_month_day(day): days_to_birthday(day, self._as_of) for day in _ALL_MONTH_DAYS}
        runs: list[tuple[int, int]] = []
        previous_matched = False
        for month_day, offset in offset_of.items():
            matched = any(_in_interval(offset, interval) for interval in intervals)
            if matched and previous_matched:
                runs[-1] = (runs[-1][0], month_day)
            elif matched:
                runs.append((month_day, month_day))
            previous_matched = matched
        column = self._fields.birthday_md()
        if not runs:
            return false()
        if runs == [(_month_day(_ALL_MONTH_DAYS[0]), _month_day(_ALL_MONTH_DAYS[-1]))]:
            return column.is_not(None)
        tests = [
            column == literal(first, Integer) if first == last else column.between(literal(first, Integer), literal(last, Integer))
            for first, last in runs
        ]
        return self._guard(column, _any(tests))

    # -- attributes and sets ------------------------------------------------------

    def _attribute(self, key: str, op: str, values: list[Value]) -> ColumnElement[bool]:
        """Attributes hold text or numbers; each literal compares with values of its own kind."""
        alternatives = []
        for numeric, kind in ((False, "text"), (True, "number")):
            chosen = [value for value in values if value.kind == kind]
            if chosen and (op == "in" or len(chosen) == len(values)):
                alternatives.append(self._attribute_match(key, numeric, op, chosen))
        if not alternatives:
            return false()
        return _any(alternatives)

    def _attribute_match(self, key: str, numeric: bool, op: str, values: list[Value]) -> ColumnElement[bool]:
        def predicate(column: ColumnElement[Any]) -> ColumnElement[bool]:
            return self._number(column, op, values) if numeric else self._text(column, op, values)

        return self._fields.attribute_where(key, numeric, predicate)


_LITERAL_KIND: dict[str, ValueKind] = {"text": "text", "ordered": "text", "number": "number", "date": "date"}

_ORDER_TESTS: dict[str, Callable[[int, int], bool]] = {
    "<": lambda index, bound: index < bound,
    "<=": lambda index, bound: index <= bound,
    ">": lambda index, bound: index > bound,
    ">=": lambda index, bound: index >= bound,
}

