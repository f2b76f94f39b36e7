"""Relay object identification through the API: `node(id)` and `nodes(ids)` (docs/graphql.md,
"Fetching any object by ID").  The agent scope is the one of tests/schema/test_agent_scope.py:
the agent's customers are C000, C001, C003, C005; C002 and C004 are not theirs."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.storage import models
from segmenta.storage.engine import session_factory
from tests.schema.helpers import Api, World, build_world, global_id
from tests.schema.test_agent_scope import scoped  # noqa: F401  (fixture)
from tests.schema.test_statement_count import counted_statements

NODE = """query ($id: ID!) { node(id: $id) { __typename id } }"""
NODES = """query ($ids: [ID!]!) { nodes(ids: $ids) { __typename id ... on Customer { code } } }"""


async def _rows_of_every_kind(engine: AsyncEngine, world: World) -> dict[str, str]:
    """One row of each type without a root field of its own, by type name → global ID."""
    customer = world.customers["C002"]
    async with session_factory(engine)() as session:
        ruleset = models.RulesetVersion(name="policy", version=1, source="", status="draft")
        session.add(ruleset)
        await session.flush()
        run = models.EvaluationRun(ruleset_id=ruleset.id, mode="preview", status="succeeded", as_of=datetime(2026, 1, 1))
        session.add(run)
        await session.flush()
        rows: dict[str, models.Base] = {
            "Purchase": models.Purchase(customer_id=customer, amount=10.0),
            "Interaction": models.Interaction(customer_id=customer, kind="call"),
            "Feedback": models.Feedback(customer_id=customer, kind="complaint"),
            "AssignmentChange": models.AssignmentHistory(customer_id=customer, cause="manual"),
            "EvaluationChange": models.EvaluationChange(run_id=run.id, customer_id=customer),
            "Task": models.Task(customer_id=customer, kind="call", title="Call", due_at=datetime(2026, 1, 2)),
        }
        session.add_all(rows.values())
        await session.flush()
        ids = {name: global_id(name, row.id) for name, row in rows.items()}  # type: ignore[attr-defined]
        ids["EvaluationRun"] = global_id("EvaluationRun", run.id)
        ids["Ruleset"] = global_id("Ruleset", ruleset.id)
        await session.commit()
    return ids


async def test_every_type_with_an_id_is_refetched_by_node(api: Api, engine: AsyncEngine, world: World) -> None:
    ids = await _rows_of_every_kind(engine, world)
    ids["Customer"] = global_id("Customer", world.customers["C000"])
    ids["Team"] = global_id("Team", world.teams["east_sales"])
    ids["Employee"] = global_id("Employee", world.employees["ann"])
    ids["Segment"] = global_id("Segment", world.segments["vip"])
    tokens = (await api.data("{ apiTokens { id } }"))["apiTokens"]
    ids["ApiToken"] = tokens[0]["id"]
    for type_name, value in ids.items():
        found = (await api.data(NODE, {"id": value}))["node"]
        assert found == {"__typename": type_name, "id": value}, type_name
    listed = (await api.data(NODES, {"ids": list(ids.values())}))["nodes"]
    assert [item["__typename"] for item in listed] == list(ids)
    # Every type the schema gives an opaque ID implements Node, so none is missing above.
    schema = await api.data('{ __type(name: "Node") { possibleTypes { name } } }')
    assert sorted(item["name"] for item in schema["__type"]["possibleTypes"]) == sorted(ids)


async def test_node_selects_the_fields_of_the_concrete_type(api: Api, world: World) -> None:
    query = """query ($id: ID!) { node(id: $id) { id ... on Customer { code team { key } } ... on Team { key } } }"""
    customer = (await api.data(query, {"id": global_id("Customer", world.customers["C001"])}))["node"]
    assert (customer["code"], customer["team"]["key"]) == ("C001", "west_sales")
    team = (await api.data(query, {"id": global_id("Team", world.teams["west_sales"])}))["node"]
    assert team["key"] == "west_sales"


async def test_an_agent_gets_null_exactly_where_the_types_own_field_does(
    api: Api, engine: AsyncEngine, world: World, scoped: str  # noqa: F811
) -> None:
    ids = await _rows_of_every_kind(engine, world)  # all about C002, which is not the agent's
    mine, others = global_id("Customer", world.customers["C001"]), global_id("Customer", world.customers["C002"])
    assert (await api.data(NODE, {"id": mine}, token=scoped))["node"] == {"__typename": "Customer", "id": mine}
    assert (await api.data(NODE, {"id": others}, token=scoped))["node"] is None
    same = await api.data("query ($id: ID!) { customer(id: $id) { id } }", {"id": others}, token=scoped)
    assert same["customer"] is None
    for type_name in ("Purchase", "Interaction", "Feedback", "AssignmentChange", "EvaluationChange"):
        assert (await api.data(NODE, {"id": ids[type_name]}, token=scoped))["node"] is None, type_name
        assert (await api.data(NODE, {"id": ids[type_name]}))["node"] is not None, type_name
    # Runs, rulesets, teams are everyone's to read; tokens only an admin's.
    assert (await api.data(NODE, {"id": ids["EvaluationRun"]}, token=scoped))["node"] is not None
    token_id = (await api.data("{ apiTokens { id } }"))["apiTokens"][0]["id"]
    assert (await api.data(NODE, {"id": token_id}, token=scoped))["node"] is None
    listed = (await api.data(NODES, {"ids": [mine, others, token_id]}, token=scoped))["nodes"]
    assert listed == [{"__typename": "Customer", "id": mine, "code": "C001"}, None, None]


@pytest.mark.parametrize("role", ["viewer", "manager"])
async def test_only_an_admin_refetches_a_token(api: Api, tokens: dict[str, str], role: str) -> None:
    token_id = (await api.data("{ apiTokens { id } }"))["apiTokens"][0]["id"]
    assert (await api.data(NODE, {"id": token_id}, token=tokens[role]))["node"] is None


async def test_nodes_of_50_customers_costs_the_same_statements_as_of_5(
    api: Api, engine: AsyncEngine
) -> None:
    async with session_factory(engine)() as session:
        world = await build_world(session, customer_count=60)
    customers = [global_id("Customer", key) for key in sorted(world.customers.values())]
    mixed = [global_id("Team", world.teams["east_sales"]), global_id("Employee", world.employees["ann"])]
    query = """query ($ids: [ID!]!) { nodes(ids: $ids) { id ... on Customer { code team { key } segments { key } } } }"""
    counts = {}
    for size in (5, 50):
        with counted_statements(engine) as statements:
            listed = (await api.data(query, {"ids": customers[:size] + mixed}))["nodes"]
        assert [item["id"] for item in listed] == customers[:size] + mixed
        counts[size] = len([s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))])
    # authentication, customers, the Team node, the employee, then the customers' teams and segments
    assert counts[5] == counts[50] <= 6, counts


async def test_nodes_keeps_order_repeats_and_nulls_for_unknown_and_malformed_ids(api: Api, world: World) -> None:
    first = global_id("Customer", world.customers["C000"])
    unknown = global_id("Customer", 2_000_000)
    listed = (await api.data(NODES, {"ids": [first, "not an id", unknown, global_id("Nothing", 1), first]}))["nodes"]
    assert [item and item["code"] for item in listed] == ["C000", None, None, None, "C000"]


async def test_node_refuses_a_malformed_id_with_a_located_error(api: Api, world: World) -> None:
    for value in ("not an id", global_id("Nothing", 1), global_id("Customer", 0)):
        response = await api.post(NODE, {"id": value})
        body = response.json()
        assert body["data"] == {"node": None}
        (error,) = body["errors"]
        assert (error["extensions"]["code"], error["path"]) == ("BAD_USER_INPUT", ["node"])
        assert "not a valid Node ID" in error["message"]
    # A well-formed ID of no row is simply null.
    assert (await api.data(NODE, {"id": global_id("Team", 999_999)}))["node"] is None


async def test_nodes_takes_at_most_a_page_of_ids(api: Api, world: World) -> None:
    ids = [global_id("Customer", world.customers["C000"])] * 100
    assert len((await api.data(NODES, {"ids": ids}))["nodes"]) == 100
    response = await api.post(NODES, {"ids": ids + ids[:1]})
    body = response.json()
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "TOO_MANY_IDS", "maximum": 100, "value": 101}
    assert error["path"] == ["nodes"]
