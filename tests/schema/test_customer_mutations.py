"""Customer and activity mutations: happy paths, userErrors, and nothing written on bad input."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.schema.helpers import Api, World, global_id, key_of, snapshot

CUSTOMER_OUT = """
  customer { id code name kind industry size region city lifecycle purchasingPower email age birthday
             tags manualTags attributes metrics { purchaseCount totalSpent } }
  userErrors { field message code }
"""
CREATE = f"mutation($input: CustomerInput!) {{ createCustomer(input: $input) {{ {CUSTOMER_OUT} }} }}"
UPDATE = f"mutation($id: ID!, $input: CustomerPatch!) {{ updateCustomer(id: $id, input: $input) {{ {CUSTOMER_OUT} }} }}"


async def refused(api: Api, engine: AsyncEngine, query: str, variables: dict[str, Any], name: str) -> dict[str, Any]:
    """Run a mutation that must be refused with exactly one userError and change nothing; return that error."""
    before = await snapshot(engine)
    payload = (await api.data(query, variables))[name]
    assert len(payload["userErrors"]) == 1, payload
    assert await snapshot(engine) == before
    return payload["userErrors"][0]


async def test_create_customer_with_every_kind_of_field(api: Api) -> None:
    payload = (
        await api.data(
            CREATE,
            {
                "input": {
                    "code": "ACME",
                    "name": "Acme Ltd",
                    "kind": "COMPANY",
                    "industry": "finance",
                    "size": "ENTERPRISE",
                    "region": "east",
                    "city": "Shanghai",
                    "lifecycle": "AT_RISK",
                    "purchasingPower": "HIGH",
                    "email": "buyer@acme.example",
                    "age": 12,
                    "birthday": "2013-05-04",
                    "tags": ["key_account", "newsletter"],
                    "attributes": {"tier": "gold", "seats": 40},
                }
            },
        )
    )["createCustomer"]
    assert payload["userErrors"] == []
    customer = payload["customer"]
    assert customer["code"] == "ACME"
    assert (customer["kind"], customer["size"], customer["lifecycle"], customer["purchasingPower"]) == (
        "COMPANY", "ENTERPRISE", "AT_RISK", "HIGH",
    )
    assert customer["birthday"] == "2013-05-04"
    assert customer["manualTags"] == ["key_account", "newsletter"]
    assert customer["attributes"] == {"seats": 40, "tier": "gold"}
    assert customer["metrics"] == {"purchaseCount": 0, "totalSpent": "0.00"}
    again = await api.data("query($id: ID!) { customer(id: $id) { code city } }", {"id": customer["id"]})
    assert again["customer"] == {"code": "ACME", "city": "Shanghai"}


async def test_duplicate_code_is_a_user_error_and_writes_nothing(api: Api, engine: AsyncEngine, world: World) -> None:
    error = await refused(api, engine, CREATE, {"input": {"code": "C000", "name": "Again", "tags": ["x"]}}, "createCustomer")
    assert error["field"] == "input.code"
    assert error["code"] == "CONFLICT"
    assert "C000" in error["message"]


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"email": "not-an-email"}, "input.email"),
        ({"age": -3}, "input.age"),
        ({"code": "  "}, "input.code"),
        ({"attributes": {"tier": ["a", "list"]}}, "input.attributes"),
        ({"birthday": "2999-01-01"}, "input.birthday"),
    ],
)
async def test_invalid_customer_input_is_reported_on_its_field(
    api: Api, engine: AsyncEngine, changes: dict[str, Any], field: str
) -> None:
    error = await refused(api, engine, CREATE, {"input": {"code": "NEW", "name": "New", **changes}}, "createCustomer")
    assert error["field"] == field or error["field"].startswith(field), error


async def test_update_changes_given_fields_clears_nulls_and_keeps_the_rest(api: Api, world: World) -> None:
    customer_id = global_id("Customer", world.customers["C000"])
    payload = (
        await api.data(
            UPDATE,
            {
                "id": customer_id,
                "input": {"name": "Renamed", "region": None, "size": "LARGE", "tags": ["solo"], "attributes": {"tier": None, "new": 1}},
            },
        )
    )["updateCustomer"]
    assert payload["userErrors"] == []
    customer = payload["customer"]
    assert customer["name"] == "Renamed"
    assert customer["region"] is None
    assert customer["size"] == "LARGE"
    assert customer["industry"] == "finance"  # not given: kept
    assert customer["manualTags"] == ["solo"]
    assert customer["tags"] == ["priority", "solo"]  # rule-made tags are not touched
    assert customer["attributes"] == {"new": 1, "score": 0}


@pytest.mark.parametrize(
    "bad_id, code",
    [("garbage", "INVALID_ID"), (global_id("Team", 1), "INVALID_ID"), (global_id("Customer", 424242), "NOT_FOUND")],
)
async def test_update_with_a_bad_id_is_a_user_error_on_id(
    api: Api, engine: AsyncEngine, world: World, bad_id: str, code: str
) -> None:
    error = await refused(api, engine, UPDATE, {"id": bad_id, "input": {"name": "X"}}, "updateCustomer")
    assert (error["field"], error["code"]) == ("id", code)


async def test_update_to_a_taken_code_changes_nothing(api: Api, engine: AsyncEngine, world: World) -> None:
    customer_id = global_id("Customer", world.customers["C000"])
    error = await refused(api, engine, UPDATE, {"id": customer_id, "input": {"code": "C001", "name": "Z"}}, "updateCustomer")
    assert (error["field"], error["code"]) == ("input.code", "CONFLICT")


async def test_delete_customer(api: Api, world: World, engine: AsyncEngine) -> None:
    customer_id = global_id("Customer", world.customers["C001"])
    mutation = "mutation($id: ID!) { deleteCustomer(id: $id) { deletedId userErrors { field code } } }"
    assert (await api.data(mutation, {"id": customer_id}))["deleteCustomer"] == {"deletedId": customer_id, "userErrors": []}
    assert (await api.data('{ customerByCode(code: "C001") { code } }'))["customerByCode"] is None
    error = await refused(api, engine, mutation, {"id": customer_id}, "deleteCustomer")
    assert (error["field"], error["code"]) == ("id", "NOT_FOUND")


PURCHASE = """
mutation($input: PurchaseInput!) { recordPurchase(input: $input) {
  purchase { id amount category purchasedAt customer { code metrics { purchaseCount totalSpent productCategories lastPurchaseAt } } }
  userErrors { field message code } } }
"""


async def test_record_purchase_updates_the_metrics_in_the_payload(api: Api, world: World) -> None:
    customer_id = global_id("Customer", world.customers["C000"])
    payload = (
        await api.data(
            PURCHASE,
            {"input": {"customerId": customer_id, "amount": 250.5, "category": "software", "purchasedAt": "2026-01-02T03:04:05+08:00"}},
        )
    )["recordPurchase"]
    assert payload["userErrors"] == []
    purchase = payload["purchase"]
    assert key_of(purchase["id"]) > 0
    assert purchase["purchasedAt"] == "2026-01-01T19:04:05+00:00"
    assert purchase["customer"]["metrics"]["purchaseCount"] == 1
    assert purchase["customer"]["metrics"]["totalSpent"] == "250.50"
    assert purchase["customer"]["metrics"]["productCategories"] == ["software"]


@pytest.mark.parametrize(
    "changes, field, code",
    [
        ({"amount": -1}, "input.amount", None),
        ({"customerId": "nope"}, "input.customerId", "INVALID_ID"),
        ({"customerId": global_id("Customer", 99999)}, "input.customerId", "NOT_FOUND"),
    ],
)
async def test_bad_purchases_are_user_errors(
    api: Api, engine: AsyncEngine, world: World, changes: dict[str, Any], field: str, code: str | None
) -> None:
    base = {"customerId": global_id("Customer", world.customers["C000"]), "amount": 10}
    error = await refused(api, engine, PURCHASE, {"input": {**base, **changes}}, "recordPurchase")
    assert error["field"] == field
    if code is not None:
        assert error["code"] == code


INTERACTION = """
mutation($input: InteractionInput!) { recordInteraction(input: $input) {
  interaction { kind summary employee { name } customer { metrics { interactionCount daysSinceContact } } }
  userErrors { field message code } } }
"""


async def test_record_interaction(api: Api, engine: AsyncEngine, world: World) -> None:
    base = {"customerId": global_id("Customer", world.customers["C002"]), "kind": "MEETING", "summary": "kick-off"}
    payload = (
        await api.data(INTERACTION, {"input": {**base, "employeeId": global_id("Employee", world.employees["ann"])}})
    )["recordInteraction"]
    assert payload == {
        "interaction": {
            "kind": "MEETING",
            "summary": "kick-off",
            "employee": {"name": "Ann Lee"},
            "customer": {"metrics": {"interactionCount": 1, "daysSinceContact": 0}},
        },
        "userErrors": [],
    }
    error = await refused(
        api, engine, INTERACTION, {"input": {**base, "employeeId": global_id("Employee", 9999)}}, "recordInteraction"
    )
    assert (error["field"], error["code"]) == ("input.employeeId", "NOT_FOUND")


FEEDBACK = """
mutation($input: FeedbackInput!) { submitFeedback(input: $input) {
  feedback { id kind score status customer { metrics { avgSatisfaction complaintCount openComplaints } } }
  userErrors { field message code } } }
"""
STATUS = """
mutation($id: ID!, $status: FeedbackStatus!, $note: String) { updateFeedbackStatus(id: $id, status: $status, note: $note) {
  feedback { status statusNote resolvedAt customer { metrics { openComplaints } } }
  userErrors { field message code } } }
"""


async def test_feedback_lifecycle(api: Api, engine: AsyncEngine, world: World) -> None:
    customer = global_id("Customer", world.customers["C003"])
    survey = (await api.data(FEEDBACK, {"input": {"customerId": customer, "kind": "SURVEY", "score": 4}}))["submitFeedback"]
    assert survey["userErrors"] == []
    assert survey["feedback"]["status"] == "CLOSED"
    assert survey["feedback"]["customer"]["metrics"]["avgSatisfaction"] == 4.0

    error = await refused(api, engine, FEEDBACK, {"input": {"customerId": customer, "kind": "SURVEY"}}, "submitFeedback")
    assert (error["field"], error["code"]) == ("input.score", "REQUIRED")

    complaint = (await api.data(FEEDBACK, {"input": {"customerId": customer, "kind": "COMPLAINT", "comment": "late"}}))[
        "submitFeedback"
    ]
    assert complaint["feedback"]["status"] == "OPEN"
    assert complaint["feedback"]["customer"]["metrics"]["openComplaints"] == 1

    resolved = (await api.data(STATUS, {"id": complaint["feedback"]["id"], "status": "RESOLVED", "note": "refunded"}))[
        "updateFeedbackStatus"
    ]
    assert resolved["userErrors"] == []
    assert resolved["feedback"]["status"] == "RESOLVED"
    assert resolved["feedback"]["statusNote"] == "refunded"
    assert resolved["feedback"]["resolvedAt"] is not None
    assert resolved["feedback"]["customer"]["metrics"]["openComplaints"] == 0

    closed = (await api.data(STATUS, {"id": complaint["feedback"]["id"], "status": "CLOSED"}))["updateFeedbackStatus"]
    assert closed["feedback"]["status"] == "CLOSED"
    error = await refused(api, engine, STATUS, {"id": complaint["feedback"]["id"], "status": "RESOLVED"}, "updateFeedbackStatus")
    assert (error["field"], error["code"]) == ("status", "INVALID_TRANSITION")
    error = await refused(api, engine, STATUS, {"id": customer, "status": "CLOSED"}, "updateFeedbackStatus")
    assert (error["field"], error["code"]) == ("id", "INVALID_ID")


async def test_each_mutation_of_an_operation_commits_on_its_own(api: Api, engine: AsyncEngine) -> None:
    document = """
    mutation {
      first: createCustomer(input: {code: "A1", name: "First"}) { customer { code } userErrors { code } }
      second: createCustomer(input: {code: "A1", name: "Second"}) { customer { code } userErrors { field code } }
      third: createCustomer(input: {code: "A3", name: "Third"}) { customer { code } userErrors { code } }
    }
    """
    data = await api.data(document)
    assert data["first"] == {"customer": {"code": "A1"}, "userErrors": []}
    assert data["second"] == {"customer": None, "userErrors": [{"field": "input.code", "code": "CONFLICT"}]}
    assert data["third"] == {"customer": {"code": "A3"}, "userErrors": []}
    listed = await api.data("{ customers(orderBy: CODE_ASC) { edges { node { code name } } } }")
    assert [edge["node"] for edge in listed["customers"]["edges"]] == [
        {"code": "A1", "name": "First"},
        {"code": "A3", "name": "Third"},
    ]
