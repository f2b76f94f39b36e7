"""Money through the API: exact amounts in and out as decimal strings (the `Money` scalar), sums and averages
to the cent, rules comparing money exactly on the boundary, and cursors carrying exact amounts."""

from __future__ import annotations

import base64
import json

from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.schema.ids import CURSOR_PREFIX, encode_cursor
from tests.schema.helpers import Api, World, global_id, snapshot

PURCHASE = """
mutation($input: PurchaseInput!) { recordPurchase(input: $input) {
  purchase { amount customer { metrics { totalSpent avgOrderValue purchaseCount } } }
  userErrors { field code } } }
"""
CODES_WHERE = "query($where: String!) { customers(where: $where, first: 100) { nodes { code } } }"


async def _buy(api: Api, customer: str, amount: object) -> dict[str, object]:
    payload = (await api.data(PURCHASE, {"input": {"customerId": customer, "amount": amount}}))["recordPurchase"]
    assert payload["userErrors"] == [], payload
    return payload["purchase"]  # type: ignore[no-any-return]


async def _codes(api: Api, where: str) -> set[str]:
    return {node["code"] for node in (await api.data(CODES_WHERE, {"where": where}))["customers"]["nodes"]}


async def test_amounts_are_exact_decimal_strings_and_0_10_plus_0_20_is_0_30(api: Api, world: World) -> None:
    customer = global_id("Customer", world.customers["C000"])  # spent 0 so far
    first = await _buy(api, customer, "0.10")  # a string
    second = await _buy(api, customer, 0.2)  # a JSON number, read as the decimal written
    assert (first["amount"], second["amount"]) == ("0.10", "0.20")
    assert second["customer"] == {"metrics": {"totalSpent": "0.30", "avgOrderValue": "0.15", "purchaseCount": 2}}
    # Sums over a team are exact too (C000 is in east_sales with C002 (200) and C004 (400)).
    team = await api.data('{ team(key: "east_sales") { stats { totalSpent } } }')
    assert team["team"]["stats"]["totalSpent"] == "600.30"
    # A literal in a document is read from its text, never through a float.
    literal = await api.data(
        f'mutation {{ recordPurchase(input: {{customerId: "{customer}", amount: 0.7}}) {{ purchase {{ amount }} }} }}'
    )
    assert literal["recordPurchase"]["purchase"] == {"amount": "0.70"}


async def test_an_average_is_rounded_half_to_even_to_the_cent(api: Api, world: World) -> None:
    customer = global_id("Customer", world.customers["C000"])
    await _buy(api, customer, "0.05")
    purchase = await _buy(api, customer, "0")
    assert purchase["customer"]["metrics"]["avgOrderValue"] == "0.02"  # 0.025: to the even cent  # type: ignore[index]
    assert await _codes(api, "avg_order_value = 0.02") == {"C000"}
    assert await _codes(api, "avg_order_value = 0.025") == set()


async def test_rules_compare_money_exactly_on_the_boundary(api: Api, world: World) -> None:
    customer = global_id("Customer", world.customers["C000"])
    await _buy(api, customer, "0.10")
    await _buy(api, customer, "0.20")
    assert "C000" in await _codes(api, "total_spent >= 0.3")
    assert "C000" in await _codes(api, "total_spent = 0.30")
    assert "C000" not in await _codes(api, "total_spent > 0.3")
    assert "C000" in await _codes(api, "total_spent between 0.295 and 0.305")
    # The world's totals are 0, 100, 200, ...: 100000.00 vs 99999.99 at a whole-cent boundary.
    assert await _codes(api, "total_spent >= 100") == {"C001", "C002", "C003", "C004", "C005"}
    assert await _codes(api, "total_spent > 99.99 and total_spent < 100.01") == {"C001"}


async def test_bad_amounts_are_refused_and_write_nothing(api: Api, engine: AsyncEngine, world: World) -> None:
    customer = global_id("Customer", world.customers["C000"])
    before = await snapshot(engine)
    for amount in ("0.105", 0.105, "-0.01", "1000000000.01"):
        payload = (await api.data(PURCHASE, {"input": {"customerId": customer, "amount": amount}}))["recordPurchase"]
        assert payload == {"purchase": None, "userErrors": [{"field": "input.amount", "code": "OUT_OF_RANGE"}]}
    for amount in ("ten", "NaN", "Infinity", True, [1]):
        errors = await api.errors(PURCHASE, {"input": {"customerId": customer, "amount": amount}})
        assert [error["extensions"]["code"] for error in errors] == ["BAD_USER_INPUT"], (amount, errors)
    assert await snapshot(engine) == before


async def test_monthly_targets_are_money(api: Api, world: World) -> None:
    updated = await api.data(
        'mutation { updateTeam(key: "east_sales", input: {monthlyTarget: "150000.10"}) '
        "{ team { monthlyTarget stats { monthlyTarget } } userErrors { field code } } }"
    )
    assert updated["updateTeam"] == {
        "team": {"monthlyTarget": "150000.10", "stats": {"monthlyTarget": "150000.10"}}, "userErrors": []
    }
    refused = await api.data('mutation { updateTeam(key: "east_sales", input: {monthlyTarget: "1.001"}) '
                             "{ userErrors { field code } } }")
    assert refused["updateTeam"]["userErrors"] == [{"field": "input.monthlyTarget", "code": "OUT_OF_RANGE"}]


def _sort_value(cursor: str) -> object:
    text = base64.b64decode(cursor).decode("utf-8")
    return json.loads(text[len(CURSOR_PREFIX) :])[0][0]


async def test_a_total_spent_cursor_carries_the_exact_amount(api: Api, world: World) -> None:
    customer = global_id("Customer", world.customers["C005"])  # 500 so far
    await _buy(api, customer, "0.10")
    await _buy(api, customer, "0.20")
    page = "query($after: String) { customers(first: 2, orderBy: TOTAL_SPENT_DESC, after: $after) " \
           "{ edges { cursor node { code } } } }"
    edges = (await api.data(page))["customers"]["edges"]
    assert [edge["node"]["code"] for edge in edges] == ["C005", "C004"]
    assert _sort_value(edges[0]["cursor"]) == "500.30"
    after = (await api.data(page, {"after": edges[0]["cursor"]}))["customers"]["edges"]
    assert [edge["node"]["code"] for edge in after] == ["C004", "C003"]
    # A cursor from before money was exact (a float) still points at its row.
    old = encode_cursor([500.29999999999995], world.customers["C005"])
    after_old = (await api.data(page, {"after": old}))["customers"]["edges"]
    assert [edge["node"]["code"] for edge in after_old] == ["C004", "C003"]
    # A forged cursor with a fraction of a cent is refused, not rounded.
    forged = encode_cursor(["500.305"], world.customers["C005"])
    errors = await api.errors(page, {"after": forged})
    assert [error["extensions"]["code"] for error in errors] == ["BAD_USER_INPUT"]
