"""The SQL compiler against hand-computed expectations, on every configured back end.

Each condition is run as `WHERE p` and as `WHERE NOT p`; `matching` asserts that the
two partition the customers (two-valued logic) before returning the matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, not_, select
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
    RuleFile,
    SegmentDef,
    SegmentRef,
    Span,
    Value,
)
from segmenta.dsl.diagnostics import RuleError
from segmenta.dsl.fields import days_between, days_to_birthday
from segmenta.dsl.sql_compiler import compile_condition, compile_ruleset
from segmenta.dsl.sql_constructs import glob_pattern, like_pattern
from segmenta.storage.models import Customer, CustomerAttribute, CustomerTag, Purchase
from segmenta.storage.rule_fields import CustomerFields, evaluate_in_database

AS_OF = datetime(2026, 3, 1, 12, 0)


# ---------------------------------------------------------------------------
# Building customers and conditions
# ---------------------------------------------------------------------------


@dataclass
class Person:
    """A test customer: `columns` are customers columns; the rest go to their own tables."""

    code: str
    columns: dict[str, Any] = field(default_factory=dict)
    tags: Sequence[str] = ()
    rule_tags: Sequence[str] = ()
    attributes: dict[str, str | float] = field(default_factory=dict)
    categories: Sequence[str | None] = ()


_COUNTS = ("purchase_count", "survey_count", "nps_count", "feedback_count", "complaint_count",
           "open_complaints", "interaction_count")
_SUMS = ("total_spent", "survey_sum", "nps_sum")
_NULLABLE = ("kind", "industry", "size", "region", "city", "country", "lifecycle", "purchasing_power", "channel",
             "email", "phone", "address", "age", "gender", "income", "occupation", "birthday",
             "first_purchase_at", "last_purchase_at", "last_contact_at")


def customer_row(person: Person) -> dict[str, Any]:
    row: dict[str, Any] = {name: None for name in _NULLABLE}
    row.update({name: 0 for name in _COUNTS})
    row.update({name: 0.0 for name in _SUMS})
    row.update(code=person.code, name=person.code, created_at=datetime(2020, 1, 1), updated_at=datetime(2020, 1, 1))
    row.update(person.columns)
    birthday = row["birthday"]
    row["birthday_md"] = None if birthday is None else birthday.month * 100 + birthday.day
    return row


async def insert_people(session: AsyncSession, people: Sequence[Person]) -> dict[str, int]:
    """Insert the people (one statement per table); returns code -> customer id."""
    if not people:
        return {}
    await session.execute(insert(Customer), [customer_row(person) for person in people])
    ids = {code: customer_id for code, customer_id in (await session.execute(select(Customer.code, Customer.id))).all()}
    tags = [{"customer_id": ids[p.code], "tag": t, "source": "manual"} for p in people for t in p.tags]
    tags += [{"customer_id": ids[p.code], "tag": t, "source": "rule"} for p in people for t in p.rule_tags]
    if tags:
        await session.execute(insert(CustomerTag), tags)
    attributes = [
        {
            "customer_id": ids[p.code],
            "key": key,
            "text_value": value if isinstance(value, str) else None,
            "number_value": None if isinstance(value, str) else float(value),
        }
        for p in people
        for key, value in p.attributes.items()
    ]
    if attributes:
        await session.execute(insert(CustomerAttribute), attributes)
    purchases = [
        {"customer_id": ids[p.code], "amount": 1.0, "category": category, "purchased_at": datetime(2025, 1, 1)}
        for p in people
        for category in p.categories
    ]
    if purchases:
        await session.execute(insert(Purchase), purchases)
    await session.flush()
    return ids


async def remove_everyone(session: AsyncSession) -> None:
    for model in (Purchase, CustomerAttribute, CustomerTag, Customer):
        await session.execute(delete(model))


def val(raw: Any) -> Value:
    if isinstance(raw, bool):
        return Value("bool", raw, str(raw).lower())
    if isinstance(raw, (int, float)):
        return Value("number", float(raw), str(raw))
    if isinstance(raw, date):
        return Value("date", raw, raw.isoformat())
    return Value("text", raw, raw, quoted=True)


def ref(name: str) -> FieldRef:
    return FieldRef(name)


def cmp(name: str, op: str, raw: Any) -> Comparison:
    return Comparison(ref(name), op, val(raw))  # type: ignore[arg-type]


def in_list(name: str, *raws: Any, negated: bool = False) -> InList:
    return InList(ref(name), tuple(val(raw) for raw in raws), negated)


def between(name: str, low: Any, high: Any) -> Between:
    return Between(ref(name), val(low), val(high))


def like(name: str, pattern: str) -> Like:
    return Like(ref(name), val(pattern))


async def matching(session: AsyncSession, condition: Condition, as_of: datetime = AS_OF) -> set[str]:
    """Codes of the customers satisfying `condition`; asserts p / not p partition everyone."""
    compiled = compile_condition(condition, CustomerFields(), as_of=as_of)
    everyone = set((await session.scalars(select(Customer.code))).all())
    matched = set((await session.scalars(select(Customer.code).where(compiled))).all())
    unmatched = set((await session.scalars(select(Customer.code).where(not_(compiled)))).all())
    assert matched.isdisjoint(unmatched) and matched | unmatched == everyone, (matched, unmatched, everyone)
    as_values = (await session.execute(select(Customer.code, compiled))).all()
    assert all(value is not None for _, value in as_values), "a compiled predicate evaluated to NULL"
    return matched


# ---------------------------------------------------------------------------
# Text, ordered and number fields
# ---------------------------------------------------------------------------

TEXT_PEOPLE = [
    Person("a", {"region": "east", "size": "large", "age": 30.0, "industry": "finance"}),
    Person("b", {"region": "west", "size": "small", "age": None, "industry": "retail"}),
    Person("c", {"region": None, "size": None, "age": 45.5}),
    Person("d", {"region": "华东", "size": "enterprise", "age": 29.999}),
    Person("e", {"region": "east ", "size": "huge", "age": -1.0}),
    Person("f", {"region": "East", "size": "medium", "age": 1e12}),
]


async def test_equality_and_its_exact_complement(session: AsyncSession) -> None:
    await insert_people(session, TEXT_PEOPLE)
    assert await matching(session, cmp("region", "=", "east")) == {"a"}
    assert await matching(session, cmp("region", "!=", "east")) == {"b", "c", "d", "e", "f"}
    assert await matching(session, cmp("region", "=", "华东")) == {"d"}
    assert await matching(session, Not(cmp("region", "=", "west"))) == {"a", "c", "d", "e", "f"}


async def test_in_and_not_in(session: AsyncSession) -> None:
    await insert_people(session, TEXT_PEOPLE)
    assert await matching(session, in_list("region", "east", "华东")) == {"a", "d"}
    assert await matching(session, in_list("region", "east", "华东", negated=True)) == {"b", "c", "e", "f"}
    assert await matching(session, in_list("age", 30, 45.5, 7)) == {"a", "c"}
    assert await matching(session, in_list("age", 30, negated=True)) == {"b", "c", "d", "e", "f"}


async def test_text_order_is_by_code_point_on_every_backend(session: AsyncSession) -> None:
    await insert_people(session, TEXT_PEOPLE)
    # Code points: "East" < "east" < "east " < "f" < "west" < "华东"; a locale collation would put "East" after "east".
    assert await matching(session, cmp("region", "<", "east")) == {"f"}
    assert await matching(session, cmp("region", "<=", "east")) == {"a", "f"}
    assert await matching(session, cmp("region", ">", "f")) == {"b", "d"}
    assert await matching(session, cmp("region", ">=", "华东")) == {"d"}
    assert await matching(session, between("region", "east", "west")) == {"a", "b", "e"}


async def test_ordered_fields_compare_by_declared_order(session: AsyncSession) -> None:
    await insert_people(session, TEXT_PEOPLE)
    assert await matching(session, cmp("size", ">=", "large")) == {"a", "d"}
    assert await matching(session, cmp("size", ">", "small")) == {"a", "d", "f"}
    assert await matching(session, cmp("size", "<", "medium")) == {"b"}
    assert await matching(session, cmp("size", "<=", "small")) == {"b"}
    assert await matching(session, between("size", "medium", "large")) == {"a", "f"}
    assert await matching(session, between("size", "large", "medium")) == set()
    # A stored word outside the order ("huge") never satisfies an order test, but does equality.
    assert await matching(session, cmp("size", "<", "enterprise")) == {"a", "b", "f"}
    assert await matching(session, cmp("size", "=", "huge")) == {"e"}
    assert await matching(session, cmp("size", ">", "huge")) == set()
    assert await matching(session, Not(cmp("size", ">=", "large"))) == {"b", "c", "e", "f"}


async def test_ordered_comparison_is_an_index_friendly_in_list(session: AsyncSession) -> None:
    compiled = compile_condition(cmp("size", ">=", "large"), CustomerFields(), as_of=AS_OF)
    sql = str(compiled.compile(bind=session.bind, compile_kwargs={"render_postcompile": True}))
    assert " IN (" in sql and "CASE" not in sql


async def test_numbers(session: AsyncSession) -> None:
    await insert_people(session, TEXT_PEOPLE)
    assert await matching(session, cmp("age", "=", 30)) == {"a"}
    assert await matching(session, cmp("age", "!=", 30)) == {"b", "c", "d", "e", "f"}
    assert await matching(session, cmp("age", "<", 30)) == {"d", "e"}
    assert await matching(session, cmp("age", "<=", 30)) == {"a", "d", "e"}
    assert await matching(session, cmp("age", ">", 30)) == {"c", "f"}
    assert await matching(session, cmp("age", ">=", 29.999)) == {"a", "c", "d", "f"}
    assert await matching(session, between("age", 29.999, 45.5)) == {"a", "c", "d"}
    assert await matching(session, between("age", 45.5, 30)) == set()
    assert await matching(session, cmp("age", ">=", 1e12)) == {"f"}


async def test_a_literal_of_another_kind_never_matches(session: AsyncSession) -> None:
    await insert_people(session, TEXT_PEOPLE)
    assert await matching(session, cmp("size", ">", 5)) == set()
    assert await matching(session, cmp("size", "!=", 5)) == {"a", "b", "c", "d", "e", "f"}
    assert await matching(session, cmp("age", "=", "30")) == set()
    assert await matching(session, cmp("region", "=", True)) == set()
    assert await matching(session, cmp("age", "<", date(2026, 1, 1))) == set()
    assert await matching(session, in_list("region", "east", 5)) == {"a"}
    assert await matching(session, between("age", 1, "z")) == set()
    assert await matching(session, Contains(ref("region"), val("east"))) == set()
    assert await matching(session, like("age", "3*")) == set()


async def test_presence(session: AsyncSession) -> None:
    await insert_people(session, TEXT_PEOPLE)
    assert await matching(session, Presence(ref("region"), present=False)) == {"c"}
    assert await matching(session, Presence(ref("region"), present=True)) == {"a", "b", "d", "e", "f"}
    assert await matching(session, Presence(ref("age"), present=False)) == {"b"}
    assert await matching(session, Presence(ref("purchase_count"), present=False)) == set()


async def test_boolean_structure(session: AsyncSession) -> None:
    await insert_people(session, TEXT_PEOPLE)
    east = cmp("region", "=", "east")
    old = cmp("age", ">", 29)
    assert await matching(session, And((east, old))) == {"a"}
    assert await matching(session, Or((east, old))) == {"a", "c", "d", "f"}
    assert await matching(session, Not(And((east, old)))) == {"b", "c", "d", "e", "f"}
    assert await matching(session, Not(Or((east, cmp("age", "<", 0))))) == {"b", "c", "d", "f"}
    assert await matching(session, BoolConst(True)) == {"a", "b", "c", "d", "e", "f"}
    assert await matching(session, BoolConst(False)) == set()
    assert await matching(session, Not(BoolConst(False))) == {"a", "b", "c", "d", "e", "f"}


# ---------------------------------------------------------------------------
# like
# ---------------------------------------------------------------------------

LIKE_PEOPLE = [
    Person("acme", {"name": "Acme"}),
    Person("acme-lower", {"name": "acme"}),
    Person("percent", {"name": "50%_off!"}),
    Person("percent-near", {"name": "50%Xoff!"}),
    Person("star", {"name": "Star*[x]?"}),
    Person("star-class", {"name": "Starbx!"}),
    Person("backslash", {"name": "C:\\dir\\x"}),
    Person("chinese", {"name": "华东公司"}),
    Person("newline", {"name": "two\nlines"}),
]


def named(people: Sequence[Person], *names: str) -> set[str]:
    return {person.code for person in people if person.columns["name"] in names}


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("A*", ("Acme",)),
        ("a*", ("acme",)),
        ("Acm?", ("Acme",)),
        ("Acm", ()),
        ("*", ("Acme", "acme", "50%_off!", "50%Xoff!", "Star*[x]?", "Starbx!", "C:\\dir\\x", "华东公司", "two\nlines")),
        ("50%_off!", ("50%_off!",)),
        ("50?_off!", ("50%_off!",)),
        ("5*!", ("50%_off!", "50%Xoff!")),
        ("Star*[x]?", ("Star*[x]?",)),
        ("*[*", ("Star*[x]?",)),
        ("*]?", ("Star*[x]?",)),
        ("C:\\*", ("C:\\dir\\x",)),
        ("*\\x", ("C:\\dir\\x",)),
        ("华?公司", ("华东公司",)),
        ("华*", ("华东公司",)),
        ("two?lines", ("two\nlines",)),
        ("!", ()),
        ("%", ()),
        ("_", ()),
    ],
)
async def test_like_is_case_sensitive_whole_value_with_literal_specials(
    session: AsyncSession, pattern: str, names: tuple[str, ...]
) -> None:
    await insert_people(session, LIKE_PEOPLE)
    assert await matching(session, like("name", pattern)) == named(LIKE_PEOPLE, *names)


def test_like_pattern_translations() -> None:
    assert like_pattern("a*b?%_!") == "a%b_!%!_!!"
    assert glob_pattern("a*b?[x]%_") == "a*b?[[]x]%_"


# ---------------------------------------------------------------------------
# Dates and day-based metrics
# ---------------------------------------------------------------------------

DATE_PEOPLE = [
    Person("jan31-start", {"last_purchase_at": datetime(2026, 1, 31, 0, 0)}),
    Person("jan31-end", {"last_purchase_at": datetime(2026, 1, 31, 23, 59, 59, 999999)}),
    Person("feb1", {"last_purchase_at": datetime(2026, 2, 1, 0, 0)}),
    Person("jan30", {"last_purchase_at": datetime(2026, 1, 30, 12, 0)}),
    Person("never", {}),
]


async def test_dates_compare_by_calendar_day(session: AsyncSession) -> None:
    await insert_people(session, DATE_PEOPLE)
    day = date(2026, 1, 31)
    assert await matching(session, cmp("last_purchase_at", "=", day)) == {"jan31-start", "jan31-end"}
    assert await matching(session, cmp("last_purchase_at", "!=", day)) == {"feb1", "jan30", "never"}
    assert await matching(session, cmp("last_purchase_at", "<", day)) == {"jan30"}
    assert await matching(session, cmp("last_purchase_at", "<=", day)) == {"jan30", "jan31-start", "jan31-end"}
    assert await matching(session, cmp("last_purchase_at", ">", day)) == {"feb1"}
    assert await matching(session, cmp("last_purchase_at", ">=", day)) == {"jan31-start", "jan31-end", "feb1"}
    assert await matching(session, between("last_purchase_at", date(2026, 1, 31), date(2026, 2, 1))) == {
        "jan31-start", "jan31-end", "feb1"
    }
    assert await matching(session, in_list("last_purchase_at", date(2026, 1, 30), date(2026, 2, 1))) == {"jan30", "feb1"}
    assert await matching(session, cmp("last_purchase_at", "<", date(9999, 12, 31))) == {
        "jan31-start", "jan31-end", "feb1", "jan30"
    }
    assert await matching(session, cmp("last_purchase_at", ">", date(9999, 12, 31))) == set()


async def test_date_column_birthday(session: AsyncSession) -> None:
    await insert_people(session, [
        Person("leap", {"birthday": date(2000, 2, 29)}),
        Person("march", {"birthday": date(2000, 3, 1)}),
        Person("none", {}),
    ])
    assert await matching(session, cmp("birthday", "=", date(2000, 2, 29))) == {"leap"}
    assert await matching(session, cmp("birthday", ">", date(2000, 2, 29))) == {"march"}
    assert await matching(session, cmp("birthday", "<=", date(2000, 2, 29))) == {"leap"}


def _purchased_days_ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


DAY_PEOPLE = [
    Person("d179", {"last_purchase_at": _purchased_days_ago(179)}),
    Person("d180", {"last_purchase_at": _purchased_days_ago(180)}),
    Person("d180-late", {"last_purchase_at": _purchased_days_ago(181) + timedelta(microseconds=1)}),
    Person("d181", {"last_purchase_at": _purchased_days_ago(181)}),
    Person("future", {"last_purchase_at": AS_OF + timedelta(hours=1)}),
    Person("never", {}),
]


async def test_day_metric_boundaries(session: AsyncSession) -> None:
    await insert_people(session, DAY_PEOPLE)
    # Check the fixture against the definition first: floor((as_of - X) / 1 day).
    observed = {p.code: days_between(p.columns["last_purchase_at"], AS_OF) for p in DAY_PEOPLE if p.columns}
    assert observed == {"d179": 179, "d180": 180, "d180-late": 180, "d181": 181, "future": -1}
    metric = "days_since_purchase"
    assert await matching(session, cmp(metric, ">", 180)) == {"d181"}
    assert await matching(session, cmp(metric, ">=", 180)) == {"d180", "d180-late", "d181"}
    assert await matching(session, cmp(metric, "=", 180)) == {"d180", "d180-late"}
    assert await matching(session, cmp(metric, "!=", 180)) == {"d179", "d181", "future", "never"}
    assert await matching(session, cmp(metric, "<", 180)) == {"d179", "future"}
    assert await matching(session, cmp(metric, "<=", 180)) == {"d179", "d180", "d180-late", "future"}
    assert await matching(session, cmp(metric, ">", 179.5)) == {"d180", "d180-late", "d181"}
    assert await matching(session, cmp(metric, "<", 179.5)) == {"d179", "future"}
    assert await matching(session, cmp(metric, "=", 180.5)) == set()
    assert await matching(session, cmp(metric, "!=", 180.5)) == {p.code for p in DAY_PEOPLE}
    assert await matching(session, between(metric, 179.5, 180.9)) == {"d180", "d180-late"}
    assert await matching(session, in_list(metric, 179, 181, 200.5)) == {"d179", "d181"}
    assert await matching(session, in_list(metric, 179, 181, negated=True)) == {"d180", "d180-late", "future", "never"}
    assert await matching(session, cmp(metric, "<", 0)) == {"future"}
    assert await matching(session, cmp(metric, ">", 1e300)) == set()
    assert await matching(session, cmp(metric, "<", 1e300)) == {p.code for p in DAY_PEOPLE if p.columns}
    assert await matching(session, cmp(metric, ">", -1e300)) == {p.code for p in DAY_PEOPLE if p.columns}
    assert await matching(session, Presence(ref(metric), present=False)) == {"never"}


async def test_day_metric_is_a_range_on_the_indexed_date(session: AsyncSession) -> None:
    compiled = compile_condition(cmp("days_since_purchase", ">", 180), CustomerFields(), as_of=AS_OF)
    sql = str(compiled.compile(bind=session.bind))
    assert "last_purchase_at <=" in sql
    assert compiled.compile(bind=session.bind).params["param_1"] == AS_OF - timedelta(days=181)


async def test_tenure_and_contact_metrics(session: AsyncSession) -> None:
    await insert_people(session, [
        Person("new", {"created_at": AS_OF - timedelta(days=10, hours=1), "last_contact_at": AS_OF - timedelta(hours=2)}),
        Person("old", {"created_at": AS_OF - timedelta(days=400)}),
    ])
    assert await matching(session, cmp("tenure_days", "=", 10)) == {"new"}
    assert await matching(session, cmp("tenure_days", ">=", 365)) == {"old"}
    assert await matching(session, cmp("days_since_contact", "=", 0)) == {"new"}
    assert await matching(session, Presence(ref("days_since_contact"), present=False)) == {"old"}


BIRTHDAY_PEOPLE = [
    Person("feb29", {"birthday": date(2000, 2, 29)}),
    Person("mar01", {"birthday": date(1990, 3, 1)}),
    Person("feb28", {"birthday": date(1990, 2, 28)}),
    Person("dec31", {"birthday": date(1990, 12, 31)}),
    Person("jan01", {"birthday": date(1990, 1, 1)}),
    Person("jan05", {"birthday": date(1985, 1, 5)}),
    Person("dec19", {"birthday": date(1985, 12, 19)}),
    Person("dec25", {"birthday": date(1985, 12, 25)}),
    Person("none", {}),
]


async def test_days_to_birthday_in_a_common_year(session: AsyncSession) -> None:
    await insert_people(session, BIRTHDAY_PEOPLE)
    # 1 March 2026: 29 February falls on 1 March this year, so both are today.
    assert await matching(session, cmp("days_to_birthday", "=", 0)) == {"feb29", "mar01"}
    assert await matching(session, cmp("days_to_birthday", ">=", 364)) == {"feb28"}
    assert await matching(session, cmp("days_to_birthday", "=", 305)) == {"dec31"}
    assert await matching(session, between("days_to_birthday", 305, 306)) == {"dec31", "jan01"}
    assert await matching(session, cmp("days_to_birthday", "!=", 0)) == {
        "feb28", "dec31", "jan01", "jan05", "dec19", "dec25", "none"
    }


async def test_days_to_birthday_across_the_year_end(session: AsyncSession) -> None:
    await insert_people(session, BIRTHDAY_PEOPLE)
    as_of = datetime(2026, 12, 20, 8, 0)
    assert await matching(session, cmp("days_to_birthday", "<=", 20), as_of) == {"dec25", "dec31", "jan01", "jan05"}
    assert await matching(session, cmp("days_to_birthday", "=", 364), as_of) == {"dec19"}
    assert await matching(session, cmp("days_to_birthday", ">", 364), as_of) == set()


async def test_days_to_birthday_in_a_leap_year(session: AsyncSession) -> None:
    await insert_people(session, BIRTHDAY_PEOPLE)
    as_of = datetime(2028, 2, 28, 23, 0)
    assert await matching(session, cmp("days_to_birthday", "=", 0), as_of) == {"feb28"}
    assert await matching(session, cmp("days_to_birthday", "=", 1), as_of) == {"feb29"}
    assert await matching(session, cmp("days_to_birthday", "=", 2), as_of) == {"mar01"}


async def test_days_to_birthday_emits_ranges_not_every_day(session: AsyncSession) -> None:
    compiled = compile_condition(cmp("days_to_birthday", "<=", 30), CustomerFields(), as_of=datetime(2026, 12, 15))
    params = compiled.compile(bind=session.bind).params
    assert sorted(params.values()) == [101, 114, 1215, 1231]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    as_of=st.datetimes(min_value=datetime(1999, 1, 1), max_value=datetime(2031, 12, 31)),
    op=st.sampled_from(["=", "<", "<=", ">", ">="]),
    number=st.one_of(st.integers(-2, 367), st.floats(-2, 367, allow_nan=False)),
)
async def test_days_to_birthday_agrees_with_the_definition_for_every_birthday(
    session: AsyncSession, as_of: datetime, op: str, number: float
) -> None:
    everyone = [date(2000, 1, 1) + timedelta(days=offset) for offset in range(366)]
    if not (await session.scalars(select(Customer.id).limit(1))).first():
        await insert_people(session, [Person(day.isoformat(), {"birthday": day}) for day in everyone])
    tests = {"=": float.__eq__, "<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__}
    expected = {d.isoformat() for d in everyone if tests[op](float(days_to_birthday(d, as_of)), float(number))}
    assert await matching(session, cmp("days_to_birthday", op, number), as_of) == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    as_of=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2025, 1, 3)),
    op=st.sampled_from(["=", "<", "<=", ">", ">=", "!="]),
    number=st.one_of(st.integers(-3, 3), st.floats(-3, 3, allow_nan=False)),
)
async def test_days_since_agrees_with_the_definition_around_boundaries(
    session: AsyncSession, as_of: datetime, op: str, number: float
) -> None:
    base = datetime(2025, 1, 2)
    stamps = [base + timedelta(hours=6 * step, microseconds=micro) for step in range(-8, 9) for micro in (-1, 0, 1)]
    if not (await session.scalars(select(Customer.id).limit(1))).first():
        await insert_people(session, [Person(f"p{i}", {"last_purchase_at": s}) for i, s in enumerate(stamps)])
    tests = {"=": float.__eq__, "<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__,
             "!=": float.__ne__}
    expected = {f"p{i}" for i, s in enumerate(stamps) if tests[op](float(days_between(s, as_of)), float(number))}
    assert await matching(session, cmp("days_since_purchase", op, number), as_of) == expected


# ---------------------------------------------------------------------------
# Averages, attributes and sets
# ---------------------------------------------------------------------------


async def test_averages_are_missing_without_anything_to_average(session: AsyncSession) -> None:
    await insert_people(session, [
        Person("buyer", {"total_spent": 150000.0, "purchase_count": 3, "survey_sum": 9.0, "survey_count": 2}),
        Person("one", {"total_spent": 10.0, "purchase_count": 3, "nps_sum": 7.0, "nps_count": 1}),
        Person("none", {}),
    ])
    assert await matching(session, cmp("avg_order_value", "=", 50000)) == {"buyer"}
    # Money: 10.00 / 3 rounded half to even to the cent.
    assert await matching(session, cmp("avg_order_value", "=", 3.33)) == {"one"}
    assert await matching(session, cmp("avg_order_value", "=", 10.0 / 3)) == set()
    assert await matching(session, cmp("avg_order_value", "<", 50000)) == {"one"}
    assert await matching(session, Presence(ref("avg_order_value"), present=False)) == {"none"}
    assert await matching(session, cmp("avg_satisfaction", "=", 4.5)) == {"buyer"}
    assert await matching(session, cmp("nps", ">=", 7)) == {"one"}
    assert await matching(session, cmp("nps", "!=", 7)) == {"buyer", "none"}
    assert await matching(session, cmp("total_spent", ">=", 100_000)) == {"buyer"}
    assert await matching(session, cmp("purchase_count", "=", 0)) == {"none"}


ATTRIBUTE_PEOPLE = [
    Person("gold", attributes={"tier": "gold", "score": 7}),
    Person("silver", attributes={"tier": "silver", "score": 5.5}),
    Person("numeric-tier", attributes={"tier": 3}),
    Person("text-score", attributes={"score": "5.5"}),
    Person("none"),
]


async def test_attributes_compare_by_the_kind_of_the_literal(session: AsyncSession) -> None:
    await insert_people(session, ATTRIBUTE_PEOPLE)
    assert await matching(session, cmp("attr.tier", "=", "gold")) == {"gold"}
    assert await matching(session, cmp("attr.tier", "!=", "gold")) == {"silver", "numeric-tier", "text-score", "none"}
    assert await matching(session, cmp("attr.tier", "=", 3)) == {"numeric-tier"}
    assert await matching(session, cmp("attr.score", ">", 5)) == {"gold", "silver"}
    assert await matching(session, cmp("attr.score", "=", "5.5")) == {"text-score"}
    assert await matching(session, in_list("attr.tier", "gold", 3)) == {"gold", "numeric-tier"}
    assert await matching(session, in_list("attr.tier", "gold", 3, negated=True)) == {"silver", "text-score", "none"}
    assert await matching(session, between("attr.score", 5.5, 7)) == {"gold", "silver"}
    assert await matching(session, between("attr.tier", "a", "h")) == {"gold"}
    assert await matching(session, cmp("attr.tier", ">", "gold")) == {"silver"}
    assert await matching(session, like("attr.tier", "?ol*")) == {"gold"}
    assert await matching(session, cmp("attr.tier", "=", date(2026, 1, 1))) == set()
    assert await matching(session, Presence(ref("attr.tier"), present=True)) == {"gold", "silver", "numeric-tier"}
    assert await matching(session, Presence(ref("attr.score"), present=False)) == {"numeric-tier", "none"}


async def test_set_fields(session: AsyncSession) -> None:
    await insert_people(session, [
        Person("vip", tags=["vip", "华东"], categories=["books", "books", None]),
        Person("rule-made", rule_tags=["vip"], categories=[None]),
        Person("plain", tags=["other"]),
        Person("none"),
    ])
    assert await matching(session, Contains(ref("tags"), val("vip"))) == {"vip"}
    assert await matching(session, Not(Contains(ref("tags"), val("vip")))) == {"rule-made", "plain", "none"}
    assert await matching(session, Contains(ref("tags"), val("华东"))) == {"vip"}
    assert await matching(session, Presence(ref("tags"), present=True)) == {"vip", "plain"}
    assert await matching(session, Contains(ref("product_categories"), val("books"))) == {"vip"}
    assert await matching(session, Presence(ref("product_categories"), present=False)) == {"rule-made", "plain", "none"}
    assert await matching(session, Contains(ref("tags"), val(5))) == set()
    assert await matching(session, cmp("tags", "=", "vip")) == set()


# ---------------------------------------------------------------------------
# Segments, rule files and errors
# ---------------------------------------------------------------------------


async def test_segment_references_reuse_the_definition(session: AsyncSession) -> None:
    await insert_people(session, TEXT_PEOPLE)
    east = compile_condition(cmp("region", "=", "east"), CustomerFields(), as_of=AS_OF)
    condition = compile_condition(
        And((SegmentRef("east"), cmp("age", ">", 0))), CustomerFields(), as_of=AS_OF, segments={"east": east}
    )
    assert set((await session.scalars(select(Customer.code).where(condition))).all()) == {"a"}


def _rule(condition: Condition | None, *actions: tuple[str, str], label: str | None = None, line: int = 1) -> Rule:
    return Rule(condition, tuple(Action(kind, target) for kind, target in actions), label,  # type: ignore[arg-type]
                span=Span(line, 1, line, 40))


RULE_FILE = RuleFile((
    SegmentDef("adults", cmp("age", ">=", 18)),
    _rule(And((cmp("size", ">=", "large"), cmp("region", "=", "east"))), ("team", "senior_sales"), ("tag", "vip"),
          label="enterprise_east", line=2),
    _rule(cmp("region", "=", "华东"), ("tag", "vip"), ("segment", "china"), line=3),
    _rule(SegmentRef("adults"), ("team", "adult_desk"), ("segment", "seen"), label="adults", line=4),
    _rule(cmp("size", "=", "small"), ("team", "small_desk"), ("tag", "small"), line=5),
    _rule(None, ("team", "general_pool"), ("segment", "fallback"), ("tag", "fallback"), label="rest", line=6),
))


async def test_ruleset_first_match_team_and_additive_segments_and_tags(session: AsyncSession) -> None:
    ids = await insert_people(session, TEXT_PEOPLE)
    outcome = await evaluate_in_database(session, RULE_FILE, AS_OF)
    by_code = {code: outcome[customer_id] for code, customer_id in ids.items()}
    assert {code: (o.team, o.rule) for code, o in by_code.items()} == {
        "a": ("senior_sales", "enterprise_east"),
        "b": ("small_desk", "line 5"),
        "c": ("adult_desk", "adults"),
        "d": ("adult_desk", "adults"),
        "e": ("general_pool", "rest"),
        "f": ("adult_desk", "adults"),
    }
    assert {code: o.segments for code, o in by_code.items()} == {
        "a": {"adults", "seen"},
        "b": set(),
        "c": {"adults", "seen"},
        "d": {"adults", "seen", "china"},
        "e": {"fallback"},
        "f": {"adults", "seen"},
    }
    assert {code: o.tags for code, o in by_code.items()} == {
        "a": {"vip"}, "b": {"small"}, "c": set(), "d": {"vip"}, "e": {"fallback"}, "f": set()
    }


async def test_no_team_rule_matched_gives_null_team_and_rule(session: AsyncSession) -> None:
    ids = await insert_people(session, TEXT_PEOPLE)
    rule_file = RuleFile((_rule(cmp("region", "=", "west"), ("team", "west_desk"), line=1),
                          _rule(cmp("region", "=", "east"), ("tag", "east"), line=2)))
    outcome = await evaluate_in_database(session, rule_file, AS_OF)
    assert outcome[ids["b"]].team == "west_desk" and outcome[ids["b"]].rule == "line 1"
    assert outcome[ids["a"]].team is None and outcome[ids["a"]].rule is None and outcome[ids["a"]].tags == {"east"}
    tags_only = await evaluate_in_database(session, RuleFile((_rule(BoolConst(True), ("tag", "all")),)), AS_OF)
    assert all(o.team is None and o.tags == {"all"} for o in tags_only.values())


async def test_values_are_bound_parameters(session: AsyncSession) -> None:
    malicious = "x' OR 1=1 --"
    await insert_people(session, [*TEXT_PEOPLE, Person("evil", {"region": malicious})])
    ruleset = compile_ruleset(
        RuleFile((_rule(cmp("region", "=", malicious), ("team", "t' OR '1'='1"), label="l'; DROP TABLE customers"),)),
        CustomerFields(), as_of=AS_OF,
    )
    sql = str(select(ruleset.team, ruleset.rule).compile(bind=session.bind))
    assert malicious not in sql and "OR 1=1" not in sql and "DROP" not in sql
    assert ("?" in sql) or ("$1" in sql) or ("%(" in sql)
    assert await matching(session, cmp("region", "=", malicious)) == {"evil"}
    outcome = await evaluate_in_database(session, ruleset, AS_OF)
    assert sorted(o.team for o in outcome.values() if o.team) == ["t' OR '1'='1"]


def test_unknown_fields_and_segments_are_located_errors() -> None:
    with pytest.raises(RuleError) as unknown_field:
        compile_condition(Comparison(FieldRef("regoin", Span(3, 5, 3, 11)), "=", val("east")), CustomerFields(),
                          as_of=AS_OF)
    assert unknown_field.value.diagnostics[0].code == "unknown-field"
    assert (unknown_field.value.diagnostics[0].line, unknown_field.value.diagnostics[0].column) == (3, 5)
    with pytest.raises(RuleError) as unknown_segment:
        compile_condition(SegmentRef("vip", Span(1, 1, 1, 4)), CustomerFields(), as_of=AS_OF)
    assert unknown_segment.value.diagnostics[0].code == "unknown-segment"


def test_text_order_uses_the_c_collation_on_postgresql_whatever_the_database_default() -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    compiled = compile_condition(cmp("region", "<", "east"), CustomerFields(), as_of=AS_OF)
    assert 'COLLATE "C"' in str(compiled.compile(dialect=postgresql.dialect()))
    assert "COLLATE" not in str(compiled.compile(dialect=sqlite.dialect()))


# The example at the top of docs/rule-language.md.
DOCS_EXAMPLE = """\
# reusable, named conditions; each also maintains a dynamic segment of that key
segment high_value = total_spent >= 100k or purchase_count >= 20
segment at_risk    = days_since_purchase > 180 and open_complaints > 0

# routing rules: [label:] condition -> action, action ...
enterprise_east: size = large and region = east -> team senior_sales
finance: industry in (finance, insurance) and high_value -> team finance_desk, tag vip
recovery: at_risk -> team customer_success, tag needs_call
size = small and region = 华东 -> team east_standard
otherwise -> team general_pool
"""


async def test_the_docs_example_from_source_text(session: AsyncSession) -> None:
    from segmenta.dsl import compile_rules
    from segmenta.dsl.parser import parse

    compile_rules(DOCS_EXAMPLE)  # checks cleanly: the example is a valid rule file
    rule_file, diagnostics = parse(DOCS_EXAMPLE)
    assert not diagnostics
    ids = await insert_people(session, [
        Person("east-large", {"size": "large", "region": "east", "industry": "finance", "total_spent": 200000.0}),
        Person("insurer", {"size": "medium", "industry": "insurance", "purchase_count": 20}),
        Person("lapsed", {"industry": "insurance", "open_complaints": 1, "last_purchase_at": AS_OF - timedelta(days=181)}),
        Person("recent", {"open_complaints": 1, "last_purchase_at": AS_OF - timedelta(days=180)}),
        Person("small-east", {"size": "small", "region": "华东"}),
    ])
    outcome = {code: (await evaluate_in_database(session, rule_file, AS_OF))[customer_id][:4]
               for code, customer_id in ids.items()}
    assert outcome == {
        # finance matches too: it does not decide the team, but its tag is additive.
        "east-large": ("senior_sales", "enterprise_east", frozenset({"high_value"}), frozenset({"vip"})),
        "insurer": ("finance_desk", "finance", frozenset({"high_value"}), frozenset({"vip"})),
        "lapsed": ("customer_success", "recovery", frozenset({"at_risk"}), frozenset({"needs_call"})),
        "recent": ("general_pool", "line 10", frozenset(), frozenset()),
        "small-east": ("east_standard", "line 9", frozenset(), frozenset()),
    }


async def test_malicious_value_in_source_text_is_a_bound_parameter(session: AsyncSession) -> None:
    from segmenta.dsl.parser import parse

    await insert_people(session, [Person("evil", {"region": "x' OR 1=1 --"}), Person("plain", {"region": "x"})])
    rule_file, diagnostics = parse('evil: region = "x\' OR 1=1 --" -> team audit')
    assert not diagnostics
    compiled = compile_ruleset(rule_file, CustomerFields(), as_of=AS_OF)
    assert "1=1" not in str(compiled.team.compile(bind=session.bind))
    outcome = await evaluate_in_database(session, rule_file, AS_OF)
    assert sorted((o.team, o.rule) for o in outcome.values() if o.team) == [("audit", "evil")]


async def test_day_metric_literals_beyond_any_date_span(session: AsyncSession) -> None:
    await insert_people(session, DAY_PEOPLE)
    dated = {p.code for p in DAY_PEOPLE if p.columns}
    assert await matching(session, cmp("days_since_purchase", "=", 1e12)) == set()
    assert await matching(session, cmp("days_since_purchase", "<=", 1e12)) == dated
    assert await matching(session, between("days_since_purchase", -1e12, 1e12)) == dated
    assert await matching(session, in_list("days_since_purchase", -1e12, 180)) == {"d180", "d180-late"}
    assert await matching(session, cmp("days_to_birthday", "<", 1e12)) == set()


async def test_team_case_is_lean_but_negations_keep_their_guards(session: AsyncSession) -> None:
    ids = await insert_people(session, TEXT_PEOPLE)
    rule_file = RuleFile((
        _rule(And((cmp("size", ">=", "large"), cmp("region", "=", "east"))), ("team", "big_east"), line=1),
        _rule(And((cmp("region", "!=", "west"), Not(cmp("age", ">", 40)))), ("team", "not_west_young"), line=2),
        _rule(in_list("region", "west", negated=True), ("team", "other_not_west"), line=3),
    ))
    compiled = compile_ruleset(rule_file, CustomerFields(), as_of=AS_OF)
    first_when = str(compiled.team.compile(bind=session.bind)).split("WHEN")[1]
    assert "IS NOT NULL" not in first_when
    outcome = await evaluate_in_database(session, compiled, AS_OF)
    teams = {code: outcome[customer_id].team for code, customer_id in ids.items()}
    # c has no region (so `!= west` holds) but is 45.5 (so `not age > 40` fails); f is 1e12; d and e are young.
    assert teams == {"a": "big_east", "b": None, "c": "other_not_west", "d": "not_west_young",
                     "e": "not_west_young", "f": "other_not_west"}
