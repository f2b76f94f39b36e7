"""Data limits through the API: out-of-range numbers and dates, NUL bytes and over-long texts
are userErrors (mutations) or BAD_USER_INPUT (look-ups), never internal errors, and change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.schema.helpers import Api, World, global_id, snapshot

PURCHASE = """mutation($input: PurchaseInput!) {
  recordPurchase(input: $input) { purchase { amount } userErrors { field message code } } }"""
INTERACTION = """mutation($input: InteractionInput!) {
  recordInteraction(input: $input) { interaction { kind } userErrors { field message code } } }"""
FEEDBACK = """mutation($input: FeedbackInput!) {
  submitFeedback(input: $input) { feedback { kind } userErrors { field message code } } }"""
CREATE = """mutation($input: CustomerInput!) {
  createCustomer(input: $input) { customer { code name attributes } userErrors { field message code } } }"""
UPDATE = """mutation($id: ID!, $input: CustomerPatch!) {
  updateCustomer(id: $id, input: $input) { customer { code } userErrors { field message code } } }"""


async def _refused(api: Api, engine: AsyncEngine, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The one userError of a mutation that must change nothing."""
    before = await snapshot(engine)
    data = await api.data(query, variables)
    (payload,) = data.values()
    assert len(payload["userErrors"]) == 1, payload
    assert await snapshot(engine) == before
    return payload["userErrors"][0]


@pytest.mark.parametrize(
    ("fields", "path", "code"),
    [
        ({"amount": 1.7e308}, "input.amount", "OUT_OF_RANGE"),
        ({"amount": -1}, "input.amount", "OUT_OF_RANGE"),
        ({"amount": 10.005}, "input.amount", "OUT_OF_RANGE"),
        ({"amount": 1, "purchasedAt": "9999-12-31T00:00:00Z"}, "input.purchasedAt", "OUT_OF_RANGE"),
        ({"amount": 1, "purchasedAt": "0001-01-01T00:00:00+14:00"}, "input.purchasedAt", "OUT_OF_RANGE"),
        ({"amount": 1, "product": "drill\u0000"}, "input.product", "INVALID_TEXT"),
        ({"amount": 1, "category": "c" * 101}, "input.category", "TOO_LONG"),
    ],
)
async def test_bad_purchases_are_user_errors(
    api: Api, engine: AsyncEngine, world: World, fields: dict[str, Any], path: str, code: str
) -> None:
    customer = global_id("Customer", world.customers["C001"])
    error = await _refused(api, engine, PURCHASE, {"input": {"customerId": customer, **fields}})
    assert (error["field"], error["code"]) == (path, code)


async def test_other_activity_refuses_nul_and_far_dates(api: Api, engine: AsyncEngine, world: World) -> None:
    customer = global_id("Customer", world.customers["C001"])
    error = await _refused(
        api, engine, INTERACTION, {"input": {"customerId": customer, "kind": "CALL", "summary": "a\u0000b"}}
    )
    assert (error["field"], error["code"]) == ("input.summary", "INVALID_TEXT")
    error = await _refused(
        api, engine, INTERACTION, {"input": {"customerId": customer, "kind": "CALL", "occurredAt": "1800-01-01T00:00:00Z"}}
    )
    assert (error["field"], error["code"]) == ("input.occurredAt", "OUT_OF_RANGE")
    error = await _refused(
        api, engine, FEEDBACK, {"input": {"customerId": customer, "kind": "COMPLAINT", "comment": "\u0000"}}
    )
    assert (error["field"], error["code"]) == ("input.comment", "INVALID_TEXT")


@pytest.mark.parametrize(
    ("fields", "path", "code"),
    [
        ({"name": "Nul\u0000Name"}, "input.name", "INVALID_TEXT"),
        ({"city": "x" * 101}, "input.city", "TOO_LONG"),
        ({"birthday": "1899-12-31"}, "input.birthday", "OUT_OF_RANGE"),
        ({"createdAt": "0001-01-01T00:00:00+14:00"}, "input.createdAt", "OUT_OF_RANGE"),
        ({"income": 1e300}, "input.income", "OUT_OF_RANGE"),
        ({"attributes": {"note": "\u0000"}}, "input.attributes", "INVALID_TEXT"),
        ({"attributes": {f"k{n}": n for n in range(51)}}, "input.attributes", "TOO_MANY"),
        ({"tags": [f"t{n}" for n in range(51)]}, "input.tags", "TOO_MANY"),
    ],
)
async def test_bad_customers_are_user_errors(
    api: Api, engine: AsyncEngine, world: World, fields: dict[str, Any], path: str, code: str
) -> None:
    error = await _refused(api, engine, CREATE, {"input": {"code": "NEW", "name": "New", **fields}})
    assert (error["field"], error["code"]) == (path, code)
    if path != "input.createdAt":  # not a field of CustomerPatch
        update = {"id": global_id("Customer", world.customers["C001"]), "input": fields}
        error = await _refused(api, engine, UPDATE, update)
        assert (error["field"], error["code"]) == (path, code)


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("query($v: String!) { customerByCode(code: $v) { code } }", {"v": "C0\u000001"}),
        ("query($v: String!) { customerByCode(code: $v) { code } }", {"v": "C" * 101}),
        ("query($v: String!) { team(key: $v) { key } }", {"v": "east\u0000"}),
        ("query($v: String!) { segment(key: $v) { key } }", {"v": "\u0000"}),
    ],
)
async def test_lookups_by_impossible_keys_are_bad_user_input(
    api: Api, world: World, query: str, variables: dict[str, Any]
) -> None:
    """Regression: a NUL in customerByCode(code:) was an INTERNAL_SERVER_ERROR on PostgreSQL."""
    errors = await api.errors(query, variables)
    assert [error["extensions"]["code"] for error in errors] == ["BAD_USER_INPUT"]


async def test_lookup_by_an_ordinary_code_still_works(api: Api, world: World) -> None:
    data = await api.data('{ customerByCode(code: "C001") { code } missing: customerByCode(code: "nope") { code } }')
    assert data == {"customerByCode": {"code": "C001"}, "missing": None}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(st.characters(exclude_categories=("Cs",)), max_size=20) | st.sampled_from(["\u0000", "a\u0000", "x" * 201]))
async def test_any_name_is_a_customer_or_a_user_error(api: Api, engine: AsyncEngine, name: str) -> None:
    response = await api.post(CREATE, {"input": {"code": "ANY", "name": name}})
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    payload = body["data"]["createCustomer"]
    if payload["customer"] is None:
        assert [error["field"] for error in payload["userErrors"]] == ["input.name"]
        assert "\u0000" in name or not name.strip() or len(name.strip()) > 200
    else:
        assert payload["customer"]["name"] == name.strip()
        await api.data('mutation($id: ID!) { deleteCustomer(id: $id) { userErrors { code } } }',
                       {"id": (await api.data('{ customerByCode(code: "ANY") { id } }'))["customerByCode"]["id"]})


async def test_an_id_beyond_the_32_bit_keys_is_invalid_not_internal(api: Api, engine: AsyncEngine, world: World) -> None:
    """Regression: on PostgreSQL an ID holding 2**40 was an INTERNAL_SERVER_ERROR (int4 out of range)."""
    too_big = global_id("Customer", 2**40)
    error = await _refused(api, engine, PURCHASE, {"input": {"customerId": too_big, "amount": 1}})
    assert (error["field"], error["code"]) == ("input.customerId", "INVALID_ID")
    error = await _refused(api, engine, UPDATE, {"id": too_big, "input": {"name": "x"}})
    assert (error["field"], error["code"]) == ("id", "INVALID_ID")
    errors = await api.errors("query($id: ID!) { customer(id: $id) { code } }", {"id": too_big})
    assert [error["extensions"]["code"] for error in errors] == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    "customer_filter", [{"industry": "fin\u0000"}, {"industryIn": ["retail", "\u0000"]}, {"search": "C\u00000"}, {"tag": "\u0000"}]
)
async def test_a_nul_in_a_customer_filter_is_bad_user_input(api: Api, world: World, customer_filter: dict[str, Any]) -> None:
    """Regression: on PostgreSQL such a filter was an INTERNAL_SERVER_ERROR."""
    errors = await api.errors("query($f: CustomerFilter) { customers(filter: $f) { totalCount } }", {"f": customer_filter})
    assert [error["extensions"]["code"] for error in errors] == ["BAD_USER_INPUT"]
    assert "customers(filter:) contains a NUL character" in errors[0]["message"]


SAVE_RULESET = "mutation($n: String!, $s: String!) { saveRuleset(name: $n, source: $s) { userErrors { field code } } }"


@pytest.mark.parametrize(
    ("name", "source", "field"),
    [("a\u0000", "rule r: true -> team east_sales", "name"), ("ok", "# \u0000\nrule r: true -> team east_sales", "source")],
)
async def test_a_nul_in_a_ruleset_is_a_user_error(
    api: Api, engine: AsyncEngine, world: World, name: str, source: str, field: str
) -> None:
    """Regression: on PostgreSQL saveRuleset with a NUL was an INTERNAL_SERVER_ERROR."""
    error = await _refused(api, engine, SAVE_RULESET, {"n": name, "s": source})
    assert (error["field"], error["code"]) == (field, "INVALID_TEXT")


async def test_other_records_get_the_same_limits(api: Api, engine: AsyncEngine, world: World) -> None:
    employee = 'mutation { createEmployee(input: {name: "x", email: "a@b.co", monthlyTarget: 1e300}) { userErrors { field code } } }'
    error = await _refused(api, engine, employee, {})
    assert (error["field"], error["code"]) == ("input.monthlyTarget", "OUT_OF_RANGE")
    team = 'mutation($d: String!) { createTeam(input: {key: "t1", description: $d}) { userErrors { field code } } }'
    error = await _refused(api, engine, team, {"d": "\u0000"})
    assert (error["field"], error["code"]) == ("input.description", "INVALID_TEXT")


async def test_a_feedback_filter_instant_that_overflows_is_bad_user_input(api: Api, world: World) -> None:
    """Regression: createdAfter in the year 1 at +14:00 raised OverflowError (INTERNAL_SERVER_ERROR)."""
    errors = await api.errors(
        "query($d: DateTime!) { feedback(filter: {createdAfter: $d}) { totalCount } }", {"d": "0001-01-01T00:00:00+14:00"}
    )
    assert [error["extensions"]["code"] for error in errors] == ["BAD_USER_INPUT"]


async def test_a_nul_in_a_where_condition_is_bad_user_input(api: Api, world: World) -> None:
    """Regression: on PostgreSQL `name = "\\u0000"` reached the database as a bound text: INTERNAL_SERVER_ERROR."""
    errors = await api.errors('query($w: String!) { customers(where: $w) { totalCount } }', {"w": 'name = "a\u0000"'})
    assert [error["extensions"]["code"] for error in errors] == ["BAD_USER_INPUT"]


async def test_a_preview_as_of_an_instant_that_overflows_is_a_user_error(api: Api, world: World) -> None:
    """Regression: asOf in the year 1 at +14:00 raised OverflowError (INTERNAL_SERVER_ERROR)."""
    payload = (
        await api.data(
            'mutation { previewRuleset(source: "rule r: true -> team east_sales", asOf: "0001-01-01T00:00:00+14:00") '
            "{ run { id } userErrors { code } } }"
        )
    )["previewRuleset"]
    assert payload == {"run": None, "userErrors": [{"code": "OUT_OF_RANGE"}]}
