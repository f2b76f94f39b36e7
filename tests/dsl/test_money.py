"""Money in the rule language: literals compared with money fields are exact decimals, in the Python evaluator
and the SQL compiler alike (both back ends), with whole-cent values, sub-cent bounds and half-even averages."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.dsl import compile_rules
from segmenta.dsl.ast import Between, Comparison, FieldRef, InList, Value
from segmenta.dsl.fields import literal_value, lookup, money_literal
from segmenta.dsl.money import NotMoney, cents_of, mean_to_cent, plain, to_decimal
from segmenta.dsl.parser import parse_number
from segmenta.storage.money_type import Money
from tests.dsl.test_sql_compiler import Person, insert_people, matching


def number(raw: str) -> Value:
    return Value("number", parse_number(raw), raw)


@pytest.mark.parametrize(
    "raw, exact",
    [("0.1", "0.1"), ("0.30", "0.30"), ("100k", "100000"), ("1.5m", "1500000.0"), ("10万", "100000"),
     ("2亿", "200000000"), ("-1.5", "-1.5"), ("99999.99", "99999.99")],
)
def test_a_money_literal_is_the_decimal_written(raw: str, exact: str) -> None:
    assert money_literal(number(raw)) == Decimal(exact)
    total_spent, age = lookup("total_spent"), lookup("age")
    assert total_spent is not None and age is not None
    assert literal_value(total_spent, number(raw)) == Decimal(exact)
    assert isinstance(literal_value(age, number(raw)), float)  # other numbers stay floats


@pytest.mark.parametrize(
    "total, count, average",
    [("0.05", 2, "0.02"), ("0.15", 2, "0.08"), ("0.25", 2, "0.12"), ("10.00", 3, "3.33"), ("20.00", 3, "6.67"),
     ("0.00", 4, "0.00"), ("1000000000000.00", 7, "142857142857.14"), ("5.00", 0, None)],
)
def test_an_average_of_money_is_rounded_half_to_even_to_the_cent(total: str, count: int, average: str | None) -> None:
    result = mean_to_cent(Decimal(total), count)
    assert (None if result is None else str(result)) == average


def test_conversions_refuse_what_is_not_exact_money() -> None:
    assert to_decimal(0.1) == Decimal("0.1") and to_decimal(12) == Decimal(12)
    assert plain(Decimal("1E+3")) == "1000.00" and plain(Decimal("2054930.82")) == "2054930.82"
    for bad in (True, float("nan"), float("inf"), "ten", None):
        with pytest.raises(NotMoney):
            to_decimal(bad)
    with pytest.raises(NotMoney):
        cents_of(Decimal("0.105"))
    with pytest.raises(NotMoney):  # the column type never rounds a bound value silently
        Money().process_bind_param(Decimal("0.105"), None)  # type: ignore[arg-type]
    assert Money().process_result_value(205493082, None) == Decimal("2054930.82")  # type: ignore[arg-type]


def _total(op: str, raw: str) -> Comparison:
    return Comparison(FieldRef("total_spent"), op, number(raw))  # type: ignore[arg-type]


CONDITIONS = {
    ">= 0.3": _total(">=", "0.3"),
    "= 0.3": _total("=", "0.3"),
    "> 0.3": _total(">", "0.3"),
    "<= 0.29": _total("<=", "0.29"),
    ">= 9.995": _total(">=", "9.995"),
    "> 9.995": _total(">", "9.995"),
    "< 9.995": _total("<", "9.995"),
    "<= 9.995": _total("<=", "9.995"),
    "= 9.995": _total("=", "9.995"),
    "in (0.3, 9.995)": InList(FieldRef("total_spent"), (number("0.3"), number("9.995"))),
    ">= 100000.00": _total(">=", "100000.00"),
    "> 99999.99": _total(">", "99999.99"),
    "between 9.991 and 9.999": Between(FieldRef("total_spent"), number("9.991"), number("9.999")),
    "between 0.295 and 0.305": Between(FieldRef("total_spent"), number("0.295"), number("0.305")),
    "avg = 0.02": Comparison(FieldRef("avg_order_value"), "=", number("0.02")),  # type: ignore[arg-type]
    "avg >= 0.025": Comparison(FieldRef("avg_order_value"), ">=", number("0.025")),  # type: ignore[arg-type]
}
PEOPLE: dict[str, dict[str, Any]] = {
    "tenths": {"total_spent": Decimal("0.10") + Decimal("0.20"), "purchase_count": 2},
    "cents": {"total_spent": Decimal("0.29"), "purchase_count": 1},
    "ten": {"total_spent": Decimal("10.00"), "purchase_count": 1},
    "under_ten": {"total_spent": Decimal("9.99"), "purchase_count": 1},
    "hundred_k": {"total_spent": Decimal("100000.00"), "purchase_count": 1},
    "just_under": {"total_spent": Decimal("99999.99"), "purchase_count": 1},
    "half_cent_average": {"total_spent": Decimal("0.05"), "purchase_count": 2},
}
EXPECTED = {
    ">= 0.3": {"tenths", "ten", "under_ten", "hundred_k", "just_under"},
    "= 0.3": {"tenths"},
    "> 0.3": {"ten", "under_ten", "hundred_k", "just_under"},
    "<= 0.29": {"cents", "half_cent_average"},
    ">= 9.995": {"ten", "hundred_k", "just_under"},
    "> 9.995": {"ten", "hundred_k", "just_under"},
    "< 9.995": {"tenths", "cents", "under_ten", "half_cent_average"},
    "<= 9.995": {"tenths", "cents", "under_ten", "half_cent_average"},
    "= 9.995": set(),
    "in (0.3, 9.995)": {"tenths"},
    ">= 100000.00": {"hundred_k"},
    "> 99999.99": {"hundred_k"},
    "between 9.991 and 9.999": set(),
    "between 0.295 and 0.305": {"tenths"},
    "avg = 0.02": {"half_cent_average"},  # 0.025 rounded half to even
    "avg >= 0.025": {"tenths", "cents", "ten", "under_ten", "hundred_k", "just_under"},
}


@pytest.mark.parametrize("name", list(CONDITIONS))
async def test_python_and_sql_agree_on_money_boundaries(session: AsyncSession, name: str) -> None:
    await insert_people(session, [Person(code, columns) for code, columns in PEOPLE.items()])
    in_sql = await matching(session, CONDITIONS[name])
    ruleset = compile_rules(f"segment hit = {_source(name)}")
    in_python = {
        code for code, columns in PEOPLE.items()
        if "hit" in ruleset.evaluate({**columns, "avg_order_value": mean_to_cent(
            columns["total_spent"], columns["purchase_count"])}).segments
    }
    assert in_sql == in_python == EXPECTED[name]


def _source(name: str) -> str:
    if name.startswith("avg "):
        return "avg_order_value " + name[len("avg "):]
    return "total_spent " + name
