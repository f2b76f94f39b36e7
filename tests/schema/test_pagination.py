"""Relay pagination: cursors walk every row exactly once in order; `first` is bounded; cursors are opaque."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.storage import models
from segmenta.storage.engine import session_factory
from tests.schema.helpers import Api, World, build_world

ORDERS = [
    "NAME_ASC", "NAME_DESC", "CODE_ASC", "CODE_DESC", "CREATED_AT_ASC", "CREATED_AT_DESC",
    "TOTAL_SPENT_ASC", "TOTAL_SPENT_DESC", "PURCHASE_COUNT_ASC", "PURCHASE_COUNT_DESC",
]
PAGE = """
query($first: Int, $after: String, $order: CustomerOrder!) {
  customers(first: $first, after: $after, orderBy: $order) {
    totalCount
    edges { cursor node { code totalSpent: metrics { totalSpent } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
CUSTOMERS = 23


@pytest.fixture
async def many(engine: AsyncEngine) -> World:
    async with session_factory(engine)() as session:
        world = await build_world(session, customer_count=CUSTOMERS)
        # Ties on the sort column: only the key keeps the order total.
        await session.execute(update(models.Customer).values(total_spent=(models.Customer.id % 4) * 100.0))
        await session.commit()
    return world


async def walk(api: Api, order: str, size: int) -> list[str]:
    codes: list[str] = []
    after: str | None = None
    while True:
        connection = (await api.data(PAGE, {"first": size, "after": after, "order": order}))["customers"]
        assert connection["totalCount"] == CUSTOMERS
        edges = connection["edges"]
        codes.extend(edge["node"]["code"] for edge in edges)
        info = connection["pageInfo"]
        assert info["hasPreviousPage"] is (after is not None)
        if edges:
            assert (info["startCursor"], info["endCursor"]) == (edges[0]["cursor"], edges[-1]["cursor"])
        if not info["hasNextPage"]:
            return codes
        assert len(edges) == size
        after = info["endCursor"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.sampled_from(ORDERS), size=st.integers(min_value=1, max_value=9))
async def test_paging_visits_every_customer_once_in_the_order_of_one_big_page(
    api: Api, many: World, order: str, size: int
) -> None:
    everything = (await api.data(PAGE, {"first": 100, "order": order}))["customers"]["edges"]
    expected = [edge["node"]["code"] for edge in everything]
    assert sorted(expected) == sorted(many.customers)
    assert await walk(api, order, size) == expected


async def test_numeric_orders_sort_by_value_then_by_creation(api: Api, many: World) -> None:
    edges = (await api.data(PAGE, {"first": 100, "order": "TOTAL_SPENT_DESC"}))["customers"]["edges"]
    spent = [(Decimal(edge["node"]["totalSpent"]["totalSpent"]), many.customers[edge["node"]["code"]]) for edge in edges]
    assert spent == sorted(spent, key=lambda pair: (-pair[0], -pair[1]))


async def test_default_page_size_is_20(api: Api, many: World) -> None:
    connection = (await api.data("{ customers { edges { cursor } pageInfo { hasNextPage } } }"))["customers"]
    assert len(connection["edges"]) == 20
    assert connection["pageInfo"]["hasNextPage"] is True


@pytest.mark.parametrize("first", [101, 1000, -1])
async def test_first_out_of_range_is_an_error(api: Api, many: World, first: int) -> None:
    for query in [
        "query($f: Int) { customers(first: $f) { totalCount } }",
        "query($f: Int) { feedback(first: $f) { totalCount } }",
        'query($f: Int) { customerByCode(code: "C000") { purchases(first: $f) { totalCount } } }',
        'query($f: Int) { team(key: "east_sales") { customers(first: $f) { totalCount } } }',
    ]:
        [error] = await api.errors(query, {"f": first})
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "first" in error["message"]


async def test_first_zero_gives_an_empty_page_with_the_count(api: Api, many: World) -> None:
    connection = (await api.data("{ customers(first: 0) { totalCount edges { cursor } pageInfo { hasNextPage endCursor } } }"))[
        "customers"
    ]
    assert connection == {"totalCount": CUSTOMERS, "edges": [], "pageInfo": {"hasNextPage": True, "endCursor": None}}


@pytest.mark.parametrize("cursor", ["garbage", "Q3VzdG9tZXI6MQ==", "Y3Vyc29yOltbIngiXSwxXQ=="])
async def test_a_bad_cursor_is_a_clear_error(api: Api, many: World, cursor: str) -> None:
    # The last one is a well-formed cursor holding text where CREATED_AT_ASC expects a timestamp.
    [error] = await api.errors(
        "query($a: String) { customers(after: $a, orderBy: CREATED_AT_ASC) { totalCount } }", {"a": cursor}
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "not a valid cursor" in error["message"]


async def test_pages_stay_stable_when_rows_are_inserted_before_the_cursor(api: Api, many: World) -> None:
    first_page = (await api.data(PAGE, {"first": 5, "order": "CODE_ASC"}))["customers"]
    await api.data('mutation { createCustomer(input: {code: "A000", name: "Early"}) { userErrors { code } } }')
    second_page = (await api.data(PAGE, {"first": 5, "after": first_page["pageInfo"]["endCursor"], "order": "CODE_ASC"}))[
        "customers"
    ]
    assert [edge["node"]["code"] for edge in second_page["edges"]] == ["C005", "C006", "C007", "C008", "C009"]
    assert second_page["totalCount"] == CUSTOMERS + 1


def _codes(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["code"] for edge in connection["edges"]]


async def test_nested_connections_page_with_their_own_cursors(api: Api, many: World) -> None:
    query = """query($after: String) { team(key: "east_sales") {
      customers(first: 4, after: $after, orderBy: CODE_ASC) { totalCount edges { cursor node { code } } pageInfo { hasNextPage endCursor } }
    } }"""
    first = (await api.data(query))["team"]["customers"]
    second = (await api.data(query, {"after": first["pageInfo"]["endCursor"]}))["team"]["customers"]
    assert _codes(first) == ["C000", "C002", "C004", "C006"]
    assert _codes(second) == ["C008", "C010", "C012", "C014"]
    assert first["totalCount"] == second["totalCount"] == 12
