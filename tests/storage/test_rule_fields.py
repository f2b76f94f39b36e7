"""CustomerFields, evaluate_in_database and customers_where against a real database (both back ends)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.dsl.parser import parse, parse_condition
from segmenta.dsl.sql_compiler import compile_condition, compile_ruleset
from segmenta.storage.models import Customer
from segmenta.storage.rule_fields import CustomerFields, customers_where, evaluate_in_database
from tests.dsl.test_sql_compiler import Person, insert_people

AS_OF = datetime(2026, 3, 1, 12, 0)

PEOPLE = [
    Person("big-east", {"size": "enterprise", "region": "华东", "total_spent": 200000.0, "purchase_count": 4},
           tags=["vip"], attributes={"tier": "gold"}, categories=["books"]),
    Person("small-east", {"size": "small", "region": "华东"}, rule_tags=["vip"], attributes={"tier": 2}),
    Person("west", {"size": "large", "region": "west", "last_purchase_at": datetime(2025, 1, 1)}),
    Person("blank", {}),
]

RULES = """\
segment high_value = total_spent >= 100k or purchase_count >= 20
enterprise_east: size >= large and region = 华东 -> team senior_sales, tag key_account
size = small and region = 华东 -> team east_standard
high_value -> tag vip_service
lapsed: days_since_purchase > 180 -> team customer_success, segment at_risk
otherwise -> team general_pool
"""


def _codes(ids: dict[str, int]) -> dict[int, str]:
    return {customer_id: code for code, customer_id in ids.items()}


@contextmanager
def counting_statements(session: AsyncSession) -> Iterator[list[str]]:
    statements: list[str] = []
    sync_engine = session.bind.sync_engine  # type: ignore[union-attr]

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(sync_engine, "before_cursor_execute", record)


async def test_evaluate_a_parsed_rule_file_in_one_statement(session: AsyncSession) -> None:
    ids = await insert_people(session, PEOPLE)
    rule_file, diagnostics = parse(RULES)
    assert not diagnostics
    with counting_statements(session) as statements:
        outcome = await evaluate_in_database(session, rule_file, AS_OF)
    assert len(statements) == 1
    by_code = {_codes(ids)[customer_id]: result for customer_id, result in outcome.items()}
    assert by_code["big-east"] == ("senior_sales", "enterprise_east", frozenset({"high_value"}),
                                   frozenset({"key_account", "vip_service"}), frozenset())
    assert by_code["small-east"] == ("east_standard", "line 3", frozenset(), frozenset(), frozenset())
    assert by_code["west"] == ("customer_success", "lapsed", frozenset({"at_risk"}), frozenset(), frozenset())
    assert by_code["blank"] == ("general_pool", "line 6", frozenset(), frozenset(), frozenset())


async def test_evaluate_selected_customers_with_a_precompiled_ruleset(session: AsyncSession) -> None:
    ids = await insert_people(session, PEOPLE)
    rule_file, _ = parse(RULES)
    compiled = compile_ruleset(rule_file, CustomerFields(), as_of=AS_OF)
    outcome = await evaluate_in_database(session, compiled, AS_OF, customer_ids=[ids["west"], ids["blank"]])
    assert set(outcome) == {ids["west"], ids["blank"]}
    assert outcome[ids["west"]].team == "customer_success"
    assert await evaluate_in_database(session, compiled, AS_OF, customer_ids=[]) == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("size >= large and region = 华东", {"big-east"}),
        ("region != 华东", {"west", "blank"}),
        ("tags contains vip", {"big-east"}),
        ("product_categories contains books or attr.tier = 2", {"big-east", "small-east"}),
        ("days_since_purchase > 365", {"west"}),
        ("not (days_since_purchase > 365)", {"big-east", "small-east", "blank"}),
        ("attr.tier is missing", {"west", "blank"}),
        ("avg_order_value = 50k", {"big-east"}),
    ],
)
async def test_customers_where_filters_orm_queries(session: AsyncSession, text: str, expected: set[str]) -> None:
    await insert_people(session, PEOPLE)
    condition, diagnostics = parse_condition(text)
    assert condition is not None, diagnostics
    codes = (await session.scalars(select(Customer.code).where(customers_where(condition, AS_OF)))).all()
    assert set(codes) == expected


async def test_customers_where_uses_given_segments(session: AsyncSession) -> None:
    await insert_people(session, PEOPLE)
    condition, _ = parse_condition("east and size = small")
    assert condition is not None
    east = Customer.region == "华东"
    codes = (await session.scalars(select(Customer.code).where(customers_where(condition, AS_OF, {"east": east})))).all()
    assert set(codes) == {"small-east"}


async def test_fields_work_over_an_alias_of_customers(session: AsyncSession) -> None:
    await insert_people(session, PEOPLE)
    alias = Customer.__table__.alias("other")
    condition, _ = parse_condition("tags contains vip or attr.tier = 2")
    assert condition is not None
    compiled = compile_condition(condition, CustomerFields(alias), as_of=AS_OF)
    codes = (await session.scalars(select(alias.c.code).where(compiled))).all()
    assert set(codes) == {"big-east", "small-east"}


async def test_attribute_value_is_a_scalar_of_its_kind(session: AsyncSession) -> None:
    ids = await insert_people(session, PEOPLE)
    fields = CustomerFields()
    rows = await session.execute(
        select(Customer.id, fields.attribute("tier", numeric=False), fields.attribute("tier", numeric=True))
    )
    values = {row[0]: (row[1], row[2]) for row in rows}
    assert values[ids["big-east"]] == ("gold", None)
    assert values[ids["small-east"]] == (None, 2.0)
    assert values[ids["blank"]] == (None, None)


def test_non_scalar_fields_are_not_columns() -> None:
    fields = CustomerFields()
    for name in ("tags", "days_since_purchase", "no_such_field"):
        with pytest.raises(KeyError):
            fields.column(name)
    with pytest.raises(KeyError):
        fields.set_present("region")


async def test_long_id_lists_are_split_into_chunks(session: AsyncSession, monkeypatch: pytest.MonkeyPatch) -> None:
    from segmenta.storage import rule_fields

    ids = await insert_people(session, PEOPLE)
    monkeypatch.setattr(rule_fields, "ID_CHUNK", 2)
    rule_file, _ = parse(RULES)
    wanted = [ids["big-east"], ids["small-east"], ids["west"]]
    with counting_statements(session) as statements:
        outcome = await evaluate_in_database(session, rule_file, AS_OF, customer_ids=wanted)
    assert len(statements) == 2
    assert {customer_id: result.team for customer_id, result in outcome.items()} == {
        ids["big-east"]: "senior_sales", ids["small-east"]: "east_standard", ids["west"]: "customer_success"
    }
