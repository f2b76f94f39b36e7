"""Differential test: the SQL compiler against the Python evaluator, on every back end.

Hypothesis draws a small population (missing values, edge numbers, exact money on cent
boundaries, Unicode, dates
around day boundaries, Feb 29 birthdays, tags, categories, attributes) and a rule
file (segments, labelled and unlabelled rules, `otherwise`, every operator, literals
of the wrong kind on purpose).  The rule file is rendered to text with the formatter
and parsed back, so the parser's tree is what both back ends compile.  For every
customer, team, deciding rule, segments and tags must be identical.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.dsl.ast import (
    Action,
    And,
    Between,
    BoolConst,
    Comparison,
    Condition,
    Contains,
    FieldRef,
    InList,
    Like,
    Not,
    Or,
    Presence,
    Rule,
    SegmentDef,
    SegmentRef,
    Statement,
    Value,
)
from segmenta.dsl.fields import FIELDS, PURCHASING_POWERS, SIZES
from segmenta.dsl.formatter import format_statement
from segmenta.dsl.money import mean_to_cent
from segmenta.dsl.parser import parse, parse_number, quote
from segmenta.dsl.ruleset import Ruleset
from segmenta.storage.rule_fields import RATIO_METRICS, evaluate_in_database
from tests.dsl.test_sql_compiler import Person, customer_row, insert_people, remove_everyone

AS_OFS = [
    datetime(2026, 3, 1, 12, 0),
    datetime(2028, 2, 28, 23, 59, 59, 999999),
    datetime(2026, 12, 31, 0, 0),
    datetime(2027, 7, 15, 6, 30, tzinfo=UTC),
]
TEXTS = ["east", "west", "华东", "East", "east ", "", "a%b_c", "Star*[x]?", "C:\\d", "north-east", "两\n行", "gold"]
NUMBER_RAWS = ["0", "1", "2", "3", "7", "30", "29.999", "-1.5", "45.5", "0.5", "4.5", "179.5", "180", "181", "364",
               "365", "366", "100k", "10万", "150000", "1000000000000", "-1",
               # Money boundaries: exact decimals against cents (0.10 + 0.20 is 0.30), sub-cent bounds,
               # and the half-cent averages rounded half to even.
               "0.1", "0.3", "0.30", "0.2", "99999.99", "100000.00", "100000.01", "9.995", "0.025", "0.02", "0.08",
               "0.12", "2.43", "2.435", "7.3"]
# Customers' totals (exact, as stored); with 1–3 purchases their averages round half to even to the cent.
TOTALS = [Decimal("0.10") + Decimal("0.20"), Decimal("0.10"), Decimal("100000.00"), Decimal("99999.99"),
          Decimal("100000.01"), Decimal("150000.00"), Decimal("7.30"), Decimal("0.05"), Decimal("0.15"),
          Decimal("0.25"), Decimal("0.00")]
DAY_OFFSETS = [0, 1, 2, 179, 180, 181, 364, 365, -1]
TAGS = ["vip", "华东", "new", "x y"]
CATEGORIES = ["books", "toys", "华", None]
LIKE_PATTERNS = ["*", "e*", "E*", "*st", "?ast", "*[*", "a%b?c", "华*", "*\\*", "", "east ", "?", "*?", "gol?"]
ATTRIBUTE_VALUES: list[str | float | None] = [None, "gold", "silver", "", 3.0, 7.0, 0.5]
# Fields the population fills; the others are always missing, so they are drawn less often.
FILLED_FIELDS = ["region", "industry", "city", "name", "size", "purchasing_power", "age", "income", "purchase_count",
                 "total_spent", "avg_order_value", "avg_satisfaction", "nps", "open_complaints", "complaint_count",
                 "created_at", "first_purchase_at", "last_purchase_at", "days_since_purchase", "days_since_contact",
                 "tenure_days", "days_to_birthday", "birthday", "tags", "product_categories", "attr.tier", "attr.score"]
OTHER_FIELDS = sorted(set(FIELDS) - set(FILLED_FIELDS))
TEAMS = ["senior_sales", "east_desk", "general_pool", "success"]


# ---------------------------------------------------------------------------
# Population
# ---------------------------------------------------------------------------


def _moment(data: st.DataObject, as_of: datetime) -> datetime | None:
    if data.draw(st.booleans()):
        return None
    days = data.draw(st.sampled_from(DAY_OFFSETS))
    nudge = data.draw(st.sampled_from([timedelta(0), timedelta(microseconds=1), -timedelta(microseconds=1),
                                       timedelta(hours=5), -timedelta(hours=13)]))
    return as_of.replace(tzinfo=None) - timedelta(days=days) + nudge


def _person(data: st.DataObject, index: int, as_of: datetime) -> Person:
    draw = data.draw
    purchase_count = draw(st.integers(0, 3))
    columns: dict[str, Any] = {
        "name": draw(st.sampled_from(TEXTS)) or f"n{index}",
        "region": draw(st.sampled_from([*TEXTS, None])),
        "industry": draw(st.sampled_from([*TEXTS, None])),
        "city": draw(st.sampled_from([*TEXTS, None])),
        "size": draw(st.sampled_from([*SIZES, "huge", None])),
        "purchasing_power": draw(st.sampled_from([*PURCHASING_POWERS, None])),
        "age": draw(st.sampled_from([None, 0.0, 30.0, 29.999, -1.5, 1e12, 45.5])),
        "income": draw(st.sampled_from([None, 0.0, 150000.0, 10000.0])),
        "purchase_count": purchase_count,
        "total_spent": Decimal("0.00") if purchase_count == 0 else draw(st.sampled_from(TOTALS)),
        "survey_count": draw(st.integers(0, 2)),
        "survey_sum": draw(st.sampled_from([0.0, 9.0, 4.5])),
        "nps_count": draw(st.integers(0, 2)),
        "nps_sum": draw(st.sampled_from([0.0, 7.0, 14.0])),
        "open_complaints": draw(st.integers(0, 2)),
        "complaint_count": draw(st.integers(0, 3)),
        "created_at": _moment(data, as_of) or datetime(2020, 1, 1),
        "last_purchase_at": _moment(data, as_of),
        "first_purchase_at": _moment(data, as_of),
        "last_contact_at": _moment(data, as_of),
        "birthday": draw(st.one_of(st.none(), st.sampled_from([date(2000, 2, 29), date(1990, 3, 1), date(1990, 2, 28),
                                                                 date(1985, 12, 31), date(1985, 1, 1)]),
                                   st.dates(date(1950, 1, 1), date(2010, 12, 31)))),
    }
    attributes = {key: value for key in ("tier", "score")
                  if (value := draw(st.sampled_from(ATTRIBUTE_VALUES))) is not None}
    return Person(
        code=f"c{index}",
        columns=columns,
        tags=draw(st.lists(st.sampled_from(TAGS), max_size=3, unique=True)),
        rule_tags=draw(st.lists(st.sampled_from(TAGS), max_size=2, unique=True)),
        attributes=attributes,  # type: ignore[arg-type]
        categories=draw(st.lists(st.sampled_from(CATEGORIES), max_size=3)),
    )


def evaluator_mapping(person: Person) -> dict[str, Any]:
    """The customer as the Python evaluator reads it: the stored row's values by rule-language name."""
    row = customer_row(person)
    mapping = {name: value for name, value in row.items() if value is not None}
    for metric, (total, count) in RATIO_METRICS.items():
        if row[count]:
            mapping[metric] = row[total] / row[count]
    average = mean_to_cent(row["total_spent"], row["purchase_count"])
    if average is not None:
        mapping["avg_order_value"] = average
    mapping["tags"] = frozenset(person.tags)
    mapping["product_categories"] = frozenset(category for category in person.categories if category is not None)
    for key, value in person.attributes.items():
        mapping[f"attr.{key}"] = value
    return mapping


# ---------------------------------------------------------------------------
# Rule files
# ---------------------------------------------------------------------------


def text_value(text: str) -> Value:
    return Value("text", text, quote(text), quoted=True)


def number_value(raw: str) -> Value:
    return Value("number", parse_number(raw), raw)


def date_value(day: date) -> Value:
    return Value("date", day, day.isoformat())


def _value(data: st.DataObject, kind: str, field: str, as_of: datetime) -> Value:
    if kind == "number":
        return number_value(data.draw(st.sampled_from(NUMBER_RAWS)))
    if kind == "date":
        base = as_of.date() - timedelta(days=data.draw(st.sampled_from(DAY_OFFSETS)))
        return date_value(data.draw(st.sampled_from([base, date(2000, 2, 29), date(1990, 3, 1)])))
    if kind == "bool":
        flag = data.draw(st.booleans())
        return Value("bool", flag, "true" if flag else "false")
    words = list(TEXTS) + ["huge"]
    if field == "size":
        words = list(SIZES) + ["huge"]
    elif field == "purchasing_power":
        words = list(PURCHASING_POWERS)
    elif field in ("tags", "product_categories"):
        words = [*TAGS, "books", "toys", "华"]
    return text_value(data.draw(st.sampled_from(words)))


def _natural_kind(field: str) -> list[str]:
    spec = FIELDS.get(field)
    if spec is None:  # attr.*
        return ["text", "number"]
    if spec.kind in ("text", "ordered", "set"):
        return ["text"]
    if spec.kind == "date":
        return ["date"]
    return ["number"]


def _predicate(data: st.DataObject, as_of: datetime) -> Condition:
    draw = data.draw
    field = draw(st.sampled_from(FILLED_FIELDS if draw(st.integers(0, 9)) else OTHER_FIELDS))
    natural = _natural_kind(field)

    def value() -> Value:
        wrong = draw(st.integers(0, 9)) == 0
        kind = draw(st.sampled_from(["text", "number", "date", "bool"] if wrong else natural))
        return _value(data, kind, field, as_of)

    shape = draw(st.sampled_from(["cmp", "cmp", "cmp", "in", "between", "like", "contains", "presence"]))
    ref = FieldRef(field)
    if shape == "cmp":
        return Comparison(ref, draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="])), value())
    if shape == "in":
        return InList(ref, tuple(value() for _ in range(draw(st.integers(1, 3)))), negated=draw(st.booleans()))
    if shape == "between":
        return Between(ref, value(), value())
    if shape == "like":
        return Like(ref, text_value(draw(st.sampled_from(LIKE_PATTERNS))))
    if shape == "contains":
        return Contains(ref, value())
    return Presence(ref, present=draw(st.booleans()))


def _condition(data: st.DataObject, as_of: datetime, segments: list[str], depth: int = 0) -> Condition:
    draw = data.draw
    choices = ["leaf", "leaf", "leaf"] + (["not", "and", "or"] if depth < 3 else [])
    choices += ["segment"] if segments else []
    choices += ["const"] if depth > 0 else []
    choice = draw(st.sampled_from(choices))
    if choice == "leaf":
        return _predicate(data, as_of)
    if choice == "segment":
        return SegmentRef(draw(st.sampled_from(segments)))
    if choice == "const":
        return BoolConst(draw(st.booleans()))
    if choice == "not":
        return Not(_condition(data, as_of, segments, depth + 1))
    operands = tuple(_condition(data, as_of, segments, depth + 1) for _ in range(draw(st.integers(2, 3))))
    return And(operands) if choice == "and" else Or(operands)


def _rule_file(data: st.DataObject, as_of: datetime) -> list[Statement]:
    draw = data.draw
    statements: list[Statement] = []
    segments: list[str] = []
    for index in range(draw(st.integers(1, 6))):
        if draw(st.integers(0, 3)) == 0:
            name = f"seg{index}"
            statements.append(SegmentDef(name, _condition(data, as_of, segments)))
            segments.append(name)
            continue
        actions = [Action("team", draw(st.sampled_from(TEAMS)))] if draw(st.integers(0, 3)) else []
        actions += [Action("tag", draw(st.sampled_from(["vip", "call", "华东"])))
                    for _ in range(draw(st.integers(0 if actions else 1, 2)))]
        if draw(st.booleans()):
            actions.append(Action("segment", draw(st.sampled_from([*segments, "watch"]))))
        if draw(st.integers(0, 2)) == 0:
            days = draw(st.sampled_from([None, 1, 3]))
            within = None if days is None else Value("number", float(days), str(days))
            actions.append(Action("task", draw(st.sampled_from(["call_back", "visit"])), within=within,
                                  unit=None if days is None else ("day" if days == 1 else "days")))
        label = f"r{index}" if draw(st.booleans()) else None
        statements.append(Rule(_condition(data, as_of, segments), tuple(actions), label))
    if draw(st.booleans()):
        statements.append(Rule(None, (Action("team", "general_pool"), Action("tag", "rest")), None))
    return statements


# ---------------------------------------------------------------------------
# The property
# ---------------------------------------------------------------------------


# A longer soak: SEGMENTA_DIFFERENTIAL_EXAMPLES=2000 pytest tests/dsl/test_differential.py
EXAMPLES = int(os.environ.get("SEGMENTA_DIFFERENTIAL_EXAMPLES", "50"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
async def test_sql_and_python_agree_for_every_customer(session: AsyncSession, data: st.DataObject) -> None:
    as_of = data.draw(st.sampled_from(AS_OFS), label="as_of")
    people = [_person(data, index, as_of) for index in range(data.draw(st.integers(1, 8)))]
    statements = _rule_file(data, as_of)
    source = "\n".join(format_statement(statement) for statement in statements)
    rule_file, diagnostics = parse(source)
    assert not [d for d in diagnostics if d.is_error], (source, diagnostics)
    assert rule_file.statements == tuple(statements), source

    await remove_everyone(session)
    ids = await insert_people(session, people)
    in_database = await evaluate_in_database(session, rule_file, as_of)
    ruleset = Ruleset(rule_file)  # unchecked on purpose: literals of the wrong kind are part of the test
    for person in people:
        expected = ruleset.evaluate(evaluator_mapping(person), as_of)
        actual = in_database[ids[person.code]]
        assert (actual.team, actual.rule, actual.segments, actual.tags, actual.tasks) == (
            expected.team, expected.rule, frozenset(expected.segments), frozenset(expected.tags),
            frozenset(task.kind for task in expected.tasks),
        ), f"customer {person}\nrules:\n{source}"

