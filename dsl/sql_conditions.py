"""One rule condition as a never-NULL SQLAlchemy boolean over a customer row (docs/sql-compilation.md).

The compiler asks a `SqlFieldSource` (the storage layer's) for the column or subquery
behind each field; every literal is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, ClassVar, Protocol

from sqlalchemy import Date, DateTime, Float, Integer, String, and_, false, literal, not_, true
from sqlalchemy.sql.elements import BindParameter, ColumnElement

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
    SegmentRef,
    Span,
    Value,
    ValueKind,
)
from segmenta.dsl.diagnostics import Diagnostic, RuleError
from segmenta.dsl.fields import ATTRIBUTE_PREFIX, FieldSpec, days_to_birthday, lookup, money_literal, naive_utc, rank
from segmenta.dsl.money import CENT, is_whole_cents
from segmenta.dsl.sql_constructs import CaseSensitiveMatch, CodepointText, all_of, any_of
from segmenta.dsl.sql_days import (
    ALL_MONTH_DAYS,
    IntInterval,
    Unbounded,
    between_interval,
    days_before,
    in_interval,
    integer_interval,
    month_day_number,
    next_day,
)

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


class SqlConditionCompiler:
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
        strict: SqlConditionCompiler | None = None,
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
        return all_of([self.compile(operand) for operand in condition.operands])

    def _or(self, condition: Or) -> ColumnElement[bool]:
        return any_of([self.compile(operand) for operand in condition.operands])

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
        if spec.money:
            return self._money(column, op, comparable)
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
            return self._guard(column, any_of([column == _bind(value) for value in values]))
        if op == "between":
            return self._guard(column, and_(column >= _bind(values[0]), column <= _bind(values[1])))
        if op == "=":
            return self._guard(column, column == _bind(values[0]))
        return self._guard(column, _TEXT_OPS[op](column, _bind(values[0])))

    def _money(self, column: ColumnElement[Any], op: str, values: list[Value]) -> ColumnElement[bool]:
        """A money comparison with exact decimal literals, as a test on whole cents (what money values are).

        A bound with a fraction of a cent becomes the whole cent on the same side (`> 9.995` is
        `> 9.99`, `>= 9.995` is `>= 10.00`), an equality with one never holds; the bound is then
        bound with the column's own type, so the database compares exactly (and an index serves it).
        """
        exact = [_within_money_range(money_literal(value)) for value in values]

        def bind(amount: Decimal) -> ColumnElement[Any]:
            return literal(amount, column.type)

        if op in ("=", "in"):
            whole = [amount for amount in exact if is_whole_cents(amount)]
            if not whole:
                return false()
            return self._guard(column, any_of([column == bind(amount) for amount in whole]))
        if op == "between":
            low, high = _cent_above(exact[0]), _cent_below(exact[1])
            return self._guard(column, and_(column >= bind(low), column <= bind(high)))
        bound = exact[0]
        if op == ">=":
            return self._guard(column, column >= bind(_cent_above(bound)))
        if op == ">":
            return self._guard(column, column > bind(_cent_below(bound)))
        if op == "<=":
            return self._guard(column, column <= bind(_cent_below(bound)))
        return self._guard(column, column < bind(_cent_above(bound)))

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
            return any_of([self._day_range(column, day, next_day(day)) for day in days])  # type: ignore[arg-type]
        first: date = days[0]  # type: ignore[assignment]
        if op == "=":
            return self._day_range(column, first, next_day(first))
        if op == "between":
            last: date = days[1]  # type: ignore[assignment]
            return false() if first > last else self._day_range(column, first, next_day(last))
        if op == "<":
            return self._day_range(column, None, first)
        if op == "<=":
            return self._day_range(column, None, next_day(first))
        if op == ">":
            following = next_day(first)
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
            intervals = [integer_interval("=", number) for number in numbers]
        elif op == "between":
            intervals = [between_interval(numbers[0], numbers[1])]
        else:
            intervals = [integer_interval(op, numbers[0])]
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
                latest = days_before(self._as_of, low)
                if isinstance(latest, Unbounded):
                    if not latest.after_all:
                        continue
                else:
                    tests.append(source <= self._instant(latest, as_date))
            if high is not None:
                earliest = days_before(self._as_of, high + 1)
                if isinstance(earliest, Unbounded):
                    if earliest.after_all:
                        continue
                else:
                    tests.append(source > self._instant(earliest, as_date))
            alternatives.append(self._guard(source, and_(*tests)) if tests else source.is_not(None))
        if not alternatives:
            return false()
        return any_of(alternatives)

    @staticmethod
    def _instant(moment: datetime, as_date: bool) -> BindParameter[Any]:
        # A Date column holds midnights: midnight(D) <= t <=> D <= t.date(), and likewise for >.
        return literal(moment.date(), Date) if as_date else literal(moment, DateTime)

    def _birthday_offsets(self, intervals: list[IntInterval]) -> ColumnElement[bool]:
        """days_to_birthday in `intervals`, as ranges of month*100+day (in calendar order)."""
        offset_of = {month_day_number(day): days_to_birthday(day, self._as_of) for day in ALL_MONTH_DAYS}
        runs: list[tuple[int, int]] = []
        previous_matched = False
        for month_day, offset in offset_of.items():
            matched = any(in_interval(offset, interval) for interval in intervals)
            if matched and previous_matched:
                runs[-1] = (runs[-1][0], month_day)
            elif matched:
                runs.append((month_day, month_day))
            previous_matched = matched
        column = self._fields.birthday_md()
        if not runs:
            return false()
        if runs == [(month_day_number(ALL_MONTH_DAYS[0]), month_day_number(ALL_MONTH_DAYS[-1]))]:
            return column.is_not(None)
        tests = [
            column == literal(first, Integer) if first == last else column.between(literal(first, Integer), literal(last, Integer))
            for first, last in runs
        ]
        return self._guard(column, any_of(tests))

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
        return any_of(alternatives)

    def _attribute_match(self, key: str, numeric: bool, op: str, values: list[Value]) -> ColumnElement[bool]:
        def predicate(column: ColumnElement[Any]) -> ColumnElement[bool]:
            return self._number(column, op, values) if numeric else self._text(column, op, values)

        return self._fields.attribute_where(key, numeric, predicate)


# Past any amount a database can hold (the data limits stop at 10^12): a bound beyond it compares as it,
# so a huge literal never overflows the column's integer cents.
_MONEY_BOUND = Decimal(10**16)


def _within_money_range(amount: Decimal) -> Decimal:
    return max(-_MONEY_BOUND, min(_MONEY_BOUND, amount))


def _cent_above(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_CEILING)


def _cent_below(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_FLOOR)


_LITERAL_KIND: dict[str, ValueKind] = {"text": "text", "ordered": "text", "number": "number", "date": "date"}

_ORDER_TESTS: dict[str, Callable[[int, int], bool]] = {
    "<": lambda index, bound: index < bound,
    "<=": lambda index, bound: index <= bound,
    ">": lambda index, bound: index > bound,
    ">=": lambda index, bound: index >= bound,
}
