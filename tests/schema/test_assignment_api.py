"""assignManager, unlockAssignment, explain and real-time routing through GraphQL (docs/routing.md)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from segmenta.storage import models
from segmenta.storage.engine import session_factory
from tests.schema.helpers import Api, World, global_id, snapshot

ASSIGN = """
mutation($ids: [ID!]!, $employee: ID!, $lock: Boolean) {
  assignManager(customerIds: $ids, employeeId: $employee, lock: $lock) {
    customers { code assignmentLocked team { key } manager { name } }
    userErrors { field message code }
  }
}"""
ASSIGN_DEFAULT_LOCK = """
mutation($ids: [ID!]!, $employee: ID!) {
  assignManager(customerIds: $ids, employeeId: $employee) {
    customers { code assignmentLocked team { key } manager { name } }
    userErrors { field message code }
  }
}"""
UNLOCK = """
mutation($ids: [ID!]!) {
  unlockAssignment(customerIds: $ids) { customers { code assignmentLocked manager { name } } userErrors { field code } }
}"""
HISTORY = """
query($id: ID!) {
  customer(id: $id) {
    assignmentHistory { cause rule teamBefore { key } teamAfter { key } managerBefore { name } managerAfter { name } }
  }
}"""
EXPLAIN = """
query($id: ID!, $ruleset: ID, $source: String) {
  explain(customerId: $id, rulesetId: $ruleset, source: $source) {
    decidingRule team { key name } manager { name } segments tags notes text
    rules { label line matched detail }
  }
}"""
RULES = "big: size >= large -> team east_sales, tag big\nrest: true -> team west_sales\n"


async def activate(engine: AsyncEngine, source: str = RULES) -> int:
    async with session_factory(engine)() as session:
        ruleset = await save_ruleset(session, "main", source)
        await activate_ruleset(session, ruleset.id)
        await session.commit()
        return ruleset.id


async def test_assign_manager_moves_locks_and_records_history(api: Api, world: World, tokens: dict[str, str]) -> None:
    west_customer = global_id("Customer", world.customers["C001"])
    data = await api.data(
        ASSIGN_DEFAULT_LOCK,
        {"ids": [west_customer], "employee": global_id("Employee", world.employees["ann"])},
        token=tokens["manager"],
    )
    payload = data["assignManager"]
    assert payload["userErrors"] == []
    assert payload["customers"] == [
        {"code": "C001", "assignmentLocked": True, "team": {"key": "east_sales"}, "manager": {"name": "Ann Lee"}}
    ]
    history = (await api.data(HISTORY, {"id": west_customer}))["customer"]["assignmentHistory"]
    assert history == [
        {
            "cause": "MANUAL",
            "rule": None,
            "teamBefore": {"key": "west_sales"},
            "teamAfter": {"key": "east_sales"},
            "managerBefore": {"name": "Bob Wu"},
            "managerAfter": {"name": "Ann Lee"},
        }
    ]
    unlocked = (await api.data(UNLOCK, {"ids": [west_customer]}))["unlockAssignment"]
    assert unlocked == {"customers": [{"code": "C001", "assignmentLocked": False, "manager": {"name": "Ann Lee"}}], "userErrors": []}


async def test_assign_without_lock(api: Api, world: World) -> None:
    data = await api.data(
        ASSIGN,
        {"ids": [global_id("Customer", world.customers["C000"])], "employee": global_id("Employee", world.employees["bob"]), "lock": False},
    )
    assert data["assignManager"]["customers"] == [
        {"code": "C000", "assignmentLocked": False, "team": {"key": "east_sales"}, "manager": {"name": "Bob Wu"}}
    ]


async def test_viewer_and_agent_are_refused_and_nothing_changes(
    api: Api, world: World, tokens: dict[str, str], agent_token: str, engine: AsyncEngine
) -> None:
    before = await snapshot(engine)
    variables = {"ids": [global_id("Customer", world.customers["C001"])], "employee": global_id("Employee", world.employees["ann"])}
    for token in (tokens["viewer"], agent_token):
        for document, arguments in ((ASSIGN, variables), (UNLOCK, {"ids": variables["ids"]})):
            response = await api.post(document, arguments, token=token)
            body = response.json()
            assert body["data"] is None
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await snapshot(engine) == before


async def test_bad_input_gives_user_errors_and_writes_nothing(api: Api, world: World, engine: AsyncEngine) -> None:
    before = await snapshot(engine)
    customer = global_id("Customer", world.customers["C001"])
    cases = [
        ({"ids": [customer], "employee": global_id("Employee", 999_999)}, "employeeId", "NOT_FOUND"),
        ({"ids": [customer], "employee": global_id("Employee", world.employees["cat"])}, "employeeId", "INACTIVE"),
        ({"ids": [customer, global_id("Customer", 999_999)], "employee": global_id("Employee", world.employees["ann"])}, "customerIds", "NOT_FOUND"),
        ({"ids": ["not-an-id"], "employee": global_id("Employee", world.employees["ann"])}, "customerIds", "INVALID_ID"),
        ({"ids": [], "employee": global_id("Employee", world.employees["ann"])}, "customerIds", "REQUIRED"),
    ]
    for variables, field, code in cases:
        payload = (await api.data(ASSIGN, variables))["assignManager"]
        assert payload["customers"] == []
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)], payload
    assert await snapshot(engine) == before


async def test_explain_with_the_active_ruleset_a_source_and_broken_rules(
    api: Api, world: World, tokens: dict[str, str], engine: AsyncEngine
) -> None:
    customer = global_id("Customer", world.customers["C001"])  # medium, west, managed by Bob in west_sales
    missing = await api.errors(EXPLAIN, {"id": customer}, token=tokens["viewer"])
    assert "no ruleset is active" in missing[0]["message"]
    await activate(engine)
    explained = (await api.data(EXPLAIN, {"id": customer}, token=tokens["viewer"]))["explain"]
    assert explained["decidingRule"] == "rest"
    assert explained["team"] == {"key": "west_sales", "name": "West sales"}
    assert explained["manager"] == {"name": "Bob Wu"}
    assert explained["notes"] == ["Now: team west_sales, manager Bob Wu", "stays in team west_sales: keeps manager Bob Wu"]
    assert explained["rules"][0] == {
        "label": "big",
        "line": 1,
        "matched": False,
        "detail": "size >= large ✗ (size is medium)",
    }
    assert explained["text"].splitlines()[0] == "Team: west_sales (decided by rest)"

    from_source = (await api.data(EXPLAIN, {"id": customer, "source": "m: size = medium -> team east_sales, tag mid\n"}))["explain"]
    assert (from_source["decidingRule"], from_source["tags"], from_source["team"]["key"]) == ("m", ["mid"], "east_sales")

    errors = await api.errors(EXPLAIN, {"id": customer, "source": "x: size > 5 -> team east_sales\n"})
    assert errors[0]["extensions"]["code"] == "RULE_ERRORS"
    [diagnostic] = errors[0]["extensions"]["diagnostics"]
    assert (diagnostic["code"], diagnostic["line"]) == ("type-mismatch", 1)

    assert (await api.data(EXPLAIN, {"id": global_id("Customer", 999_999)}))["explain"] is None


async def test_an_agent_explains_only_their_customers(
    api: Api, world: World, agent_token: str, engine: AsyncEngine
) -> None:
    await activate(engine)
    async with session_factory(engine)() as session:
        agent = await session.scalar(select(models.Employee).where(models.Employee.email == "agent@example.com"))
        assert agent is not None
        mine = await session.get(models.Customer, world.customers["C002"])
        assert mine is not None
        mine.manager_id = agent.id
        await session.commit()
    own = await api.data(EXPLAIN, {"id": global_id("Customer", world.customers["C002"])}, token=agent_token)
    assert own["explain"]["decidingRule"] == "big"
    refused = await api.errors(EXPLAIN, {"id": global_id("Customer", world.customers["C001"])}, token=agent_token)
    assert refused[0]["extensions"]["code"] == "FORBIDDEN"


async def test_create_customer_is_routed_in_real_time(api: Api, world: World, engine: AsyncEngine) -> None:
    await activate(engine)
    create = """
    mutation($input: CustomerInput!) {
      createCustomer(input: $input) { customer { code team { key } manager { name } decidingRule tags } userErrors { code } }
    }"""
    data = await api.data(create, {"input": {"code": "NEW", "name": "New Co", "size": "LARGE", "region": "east"}})
    customer = data["createCustomer"]["customer"]
    assert customer["team"] == {"key": "east_sales"} and customer["decidingRule"] == "big"
    assert customer["manager"] is not None and customer["tags"] == ["big"]


async def test_a_realtime_runs_summary_is_computed_from_its_changes(api: Api, world: World, engine: AsyncEngine) -> None:
    await activate(engine)
    create = "mutation($input: CustomerInput!) { createCustomer(input: $input) { userErrors { code } } }"
    for code, size in (("N1", "LARGE"), ("N2", "SMALL"), ("N3", "ENTERPRISE")):
        data = await api.data(create, {"input": {"code": code, "name": code, "size": size}})
        assert data["createCustomer"]["userErrors"] == []
    runs = await api.data(
        """{ evaluationRuns(first: 5) { edges { node { mode changes(first: 1) { totalCount }
             summary { evaluated changed unmatched locked ruleHits { label count } moves { from { key } to { key } count }
                       teamCounts { count } } } } } }"""
    )
    (realtime,) = [edge["node"] for edge in runs["evaluationRuns"]["edges"] if edge["node"]["mode"] == "REALTIME"]
    assert realtime["changes"]["totalCount"] == 3
    summary = realtime["summary"]
    assert (summary["evaluated"], summary["changed"], summary["unmatched"], summary["locked"]) == (3, 3, 0, 0)
    assert summary["ruleHits"] == [{"label": "big", "count": 2}, {"label": "rest", "count": 1}]
    assert summary["moves"] == [
        {"from": None, "to": {"key": "east_sales"}, "count": 2},
        {"from": None, "to": {"key": "west_sales"}, "count": 1},
    ]
    assert summary["teamCounts"] == []  # a total over every customer: not what a realtime run evaluates
