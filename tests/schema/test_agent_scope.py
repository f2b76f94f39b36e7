"""An agent sees only the customers they manage and their teams' customers, in every path
(docs/graphql.md, "An agent's customers").

The scope used throughout: the fixture's agent (agent@example.com) is a member of `west_sales`
(C001, C003, C005, managed by Bob) and manages C000 (a customer of `east_sales`).  So the agent's
customers are C000, C001, C003, C005; C002 and C004 (east_sales, Ann) are out of scope.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from segmenta.domain.access.tokens import create_token
from segmenta.domain.routing import runs
from segmenta.storage import models
from segmenta.storage.engine import session_factory
from tests.schema.helpers import Api, World, build_world, global_id, snapshot
from tests.schema.test_statement_count import PAGE_QUERY, counted_statements

MINE = ["C000", "C001", "C003", "C005"]
OTHERS = ["C002", "C004"]


async def agent_id(engine: AsyncEngine) -> int:
    async with session_factory(engine)() as session:
        found = await session.scalar(select(models.Employee.id).where(models.Employee.email == "agent@example.com"))
    assert found is not None
    return found


@pytest.fixture
async def scoped(engine: AsyncEngine, world: World, agent_token: str) -> str:
    """The world with the agent in west_sales, managing C000, and feedback and interactions on every customer."""
    agent = await agent_id(engine)
    async with session_factory(engine)() as session:
        session.add(models.TeamMember(team_id=world.teams["west_sales"], employee_id=agent, role="member"))
        mine = await session.get(models.Customer, world.customers["C000"])
        assert mine is not None
        mine.manager_id = agent
        for code, customer_id in world.customers.items():
            session.add(models.Feedback(customer_id=customer_id, kind="complaint", status="open", comment=code))
            session.add(models.Interaction(customer_id=customer_id, kind="call", summary=code))
        await session.commit()
    return agent_token


def codes(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["code"] for edge in connection["edges"]]


async def test_the_customers_connection_holds_exactly_the_agents_customers(api: Api, scoped: str) -> None:
    query = """query ($filter: CustomerFilter, $where: String, $order: CustomerOrder!) {
      customers(filter: $filter, where: $where, orderBy: $order, first: 100) { totalCount edges { node { code } } }
    }"""
    everything = (await api.data(query, {"order": "CODE_ASC"}, token=scoped))["customers"]
    assert (codes(everything), everything["totalCount"]) == (MINE, 4)
    east = (await api.data(query, {"order": "CODE_ASC", "filter": {"region": "east"}}, token=scoped))["customers"]
    assert (codes(east), east["totalCount"]) == (["C000"], 1)
    spent = (await api.data(query, {"order": "TOTAL_SPENT_DESC", "where": "total_spent >= 200"}, token=scoped))
    assert (codes(spent["customers"]), spent["customers"]["totalCount"]) == (["C005", "C003"], 2)
    # Other roles are not narrowed.
    viewer = (await api.data(query, {"order": "CODE_ASC"}))["customers"]
    assert viewer["totalCount"] == 6


async def test_paging_walks_the_agents_customers_once_each(api: Api, scoped: str) -> None:
    query = """query ($after: String) {
      customers(first: 3, after: $after, orderBy: NAME_DESC) {
        totalCount pageInfo { hasNextPage endCursor } edges { node { code } }
      }
    }"""
    first = (await api.data(query, {}, token=scoped))["customers"]
    assert (codes(first), first["pageInfo"]["hasNextPage"], first["totalCount"]) == (["C005", "C003", "C001"], True, 4)
    second = (await api.data(query, {"after": first["pageInfo"]["endCursor"]}, token=scoped))["customers"]
    assert (codes(second), second["pageInfo"]["hasNextPage"], second["totalCount"]) == (["C000"], False, 4)


async def test_a_customer_out_of_scope_reads_as_null_like_a_missing_one(api: Api, world: World, scoped: str) -> None:
    query = """query ($id: ID!, $code: String!) {
      customer(id: $id) { code } customerByCode(code: $code) { code }
    }"""
    for code in MINE:
        data = await api.data(query, {"id": global_id("Customer", world.customers[code]), "code": code}, token=scoped)
        assert data == {"customer": {"code": code}, "customerByCode": {"code": code}}
    for code in OTHERS:
        data = await api.data(query, {"id": global_id("Customer", world.customers[code]), "code": code}, token=scoped)
        assert data == {"customer": None, "customerByCode": None}
    missing = await api.data(query, {"id": global_id("Customer", 999_999), "code": "NOPE"}, token=scoped)
    assert missing == {"customer": None, "customerByCode": None}
    # An admin still reads them.
    admin = await api.data(query, {"id": global_id("Customer", world.customers["C002"]), "code": "C002"})
    assert admin == {"customer": {"code": "C002"}, "customerByCode": {"code": "C002"}}
    # Selecting its team or manager reads the customer joined with them (schema/loaders.py): same scope.
    joined = """query ($mine: ID!, $other: ID!) {
      mine: customer(id: $mine) { code team { key } manager { name } }
      other: customer(id: $other) { code team { key } }
    }"""
    ids = {"mine": global_id("Customer", world.customers[MINE[0]]), "other": global_id("Customer", world.customers[OTHERS[0]])}
    data = await api.data(joined, ids, token=scoped)
    assert data["mine"]["code"] == MINE[0] and data["other"] is None
    everything = await api.data(joined, ids)
    assert everything["other"]["code"] == OTHERS[0]


async def test_statements_built_once_scope_each_agent_by_their_own_id(
    api: Api, engine: AsyncEngine, world: World, scoped: str
) -> None:
    """The loaders and the customers page build their statements once and take the agent's id as a parameter
    (schema/prebuilt.py): requests of two agents in turn, with an admin's between them, each see their own
    customers, through every path that reads customers by a statement built once."""
    async with session_factory(engine)() as session:
        session.add(models.Employee(name="Agent Jones", email="jones@example.com"))
        await session.flush()
        jones = await session.scalar(select(models.Employee.id).where(models.Employee.email == "jones@example.com"))
        assert jones is not None
        # Jones manages C002 and belongs to no team.
        other = await session.get(models.Customer, world.customers["C002"])
        assert other is not None
        other.manager_id = jones
        jones_token = await create_token(session, "agent", employee_email="jones@example.com", label="jones")
        await session.commit()
    query = """query ($ids: [ID!]!, $one: ID!, $after: String) {
      customers(first: 100, orderBy: CODE_ASC) { totalCount edges { node { code } } }
      later: customers(first: 100, orderBy: CODE_ASC, after: $after) { edges { node { code } } }
      joined: customer(id: $one) { code team { key } }
      nodes(ids: $ids) { ... on Customer { code } }
      west: team(key: "west_sales") { stats { customerCount } customers { totalCount } }
    }"""
    everyone = [global_id("Customer", key) for key in world.customers.values()]
    after = (await api.data("{ customers(first: 1, orderBy: CODE_ASC) { pageInfo { endCursor } } }"))
    variables = {"ids": everyone, "after": after["customers"]["pageInfo"]["endCursor"]}

    async def seen(token: str | None, one: str) -> tuple[Any, ...]:
        data = await api.data(query, {**variables, "one": global_id("Customer", world.customers[one])}, token=token)
        west = data["west"]
        return (
            codes(data["customers"]),
            data["customers"]["totalCount"],
            codes(data["later"]),
            data["joined"] and data["joined"]["code"],
            sorted(node["code"] for node in data["nodes"] if node is not None),
            (west["stats"]["customerCount"], west["customers"]["totalCount"]),
        )

    mine = (MINE, 4, MINE[1:], "C001", MINE, (3, 3))
    jones_own = (["C002"], 1, ["C002"], None, ["C002"], (0, 0))
    for _ in range(2):
        assert await seen(scoped, "C001") == mine
        assert await seen(jones_token, "C001") == jones_own
        assert (await seen(None, "C001"))[1] == 6
    assert (await seen(jones_token, "C002"))[3] == "C002"


async def test_team_employee_and_segment_lists_are_scoped(api: Api, world: World, scoped: str) -> None:
    query = """query ($ann: ID!, $bob: ID!) {
      east: team(key: "east_sales") { customers(orderBy: CODE_ASC) { totalCount edges { node { code } } } }
      west: team(key: "west_sales") { customers(orderBy: CODE_ASC) { totalCount edges { node { code } } } }
      ann: employee(id: $ann) { customers { totalCount edges { node { code } } } }
      bob: employee(id: $bob) { customers(orderBy: CODE_ASC) { totalCount edges { node { code } } } }
      highValue: segment(key: "high_value") { size customers(orderBy: CODE_ASC) { totalCount edges { node { code } } } }
      vip: segment(key: "vip") { size customers(orderBy: CODE_ASC) { totalCount edges { node { code } } } }
    }"""
    variables = {"ann": global_id("Employee", world.employees["ann"]), "bob": global_id("Employee", world.employees["bob"])}
    data = await api.data(query, variables, token=scoped)
    seen = {name: (codes(data[name]["customers"]), data[name]["customers"]["totalCount"]) for name in data}
    assert seen == {
        "east": (["C000"], 1),
        "west": (["C001", "C003", "C005"], 3),
        "ann": ([], 0),
        "bob": (["C001", "C003", "C005"], 3),
        "highValue": (["C000"], 1),
        "vip": (["C000", "C003"], 2),
    }
    assert (data["highValue"]["size"], data["vip"]["size"]) == (1, 2)
    admin = await api.data(query, variables)
    assert (admin["east"]["customers"]["totalCount"], admin["highValue"]["size"]) == (3, 3)


async def test_feedback_and_nested_customers_stay_in_scope(api: Api, world: World, scoped: str) -> None:
    query = """{
      feedback(first: 100) { totalCount edges { node { comment customer { code } } } }
      customers(first: 100, orderBy: CODE_ASC) {
        edges { node { code interactions { edges { node { customer { code } } } }
                       feedback { edges { node { customer { code } } } } } }
      }
    }"""
    data = await api.data(query, token=scoped)
    feedback = data["feedback"]
    assert feedback["totalCount"] == 4
    assert sorted(edge["node"]["comment"] for edge in feedback["edges"]) == MINE
    assert all(edge["node"]["customer"]["code"] == edge["node"]["comment"] for edge in feedback["edges"])
    for edge in data["customers"]["edges"]:
        node = edge["node"]
        assert [item["node"]["customer"]["code"] for item in node["interactions"]["edges"]] == [node["code"]]
        assert [item["node"]["customer"]["code"] for item in node["feedback"]["edges"]] == [node["code"]]
    # A filter naming a customer out of scope finds nothing rather than that customer's feedback.
    other = global_id("Customer", world.customers["C002"])
    filtered = await api.data(
        "query ($c: ID!) { feedback(filter: {customerId: $c}) { totalCount edges { node { comment } } } }",
        {"c": other},
        token=scoped,
    )
    assert filtered["feedback"] == {"totalCount": 0, "edges": []}
    assert (await api.data("{ feedback { totalCount } }"))["feedback"]["totalCount"] == 6


async def test_a_runs_changes_show_only_the_agents_customers(
    api: Api, world: World, engine: AsyncEngine, scoped: str
) -> None:
    async with session_factory(engine)() as session:
        run = await runs.preview_ruleset(session, source="everyone: true -> tag seen")
    query = """query ($id: ID!) {
      evaluationRun(id: $id) { changes(first: 100) { totalCount edges { node { tagsAdded customer { code } } } } }
    }"""
    data = await api.data(query, {"id": global_id("EvaluationRun", run.id)}, token=scoped)
    changes = data["evaluationRun"]["changes"]
    assert changes["totalCount"] == len(MINE)
    assert all(edge["node"]["tagsAdded"] == ["seen"] for edge in changes["edges"])
    assert sorted(edge["node"]["customer"]["code"] for edge in changes["edges"]) == MINE
    everything = (await api.data(query, {"id": global_id("EvaluationRun", run.id)}))["evaluationRun"]["changes"]
    assert everything["totalCount"] == 6  # the admin sees every change of the run


async def test_aggregates_are_over_the_agents_customers(api: Api, world: World, scoped: str) -> None:
    query = """query ($ann: ID!) {
      stats { customerCount unassignedCustomers openFeedback customers { customerCount totalSpent purchaseCount }
              byRegion { value count } byTeam { team { key } count } employeeCount teamCount }
      east: team(key: "east_sales") { stats { customerCount totalSpent memberCount } }
      ann: employee(id: $ann) { stats { customerCount capacity freeCapacity } }
      vip: segment(key: "vip") { stats { customerCount totalSpent } }
    }"""
    variables = {"ann": global_id("Employee", world.employees["ann"])}
    data = await api.data(query, variables, token=scoped)
    stats = data["stats"]
    # C000, C001, C003, C005 have spent 0, 100, 300, 500 and bought 0, 1, 3, 5 times.
    assert (stats["customerCount"], stats["unassignedCustomers"], stats["openFeedback"]) == (4, 0, 4)
    assert stats["customers"] == {"customerCount": 4, "totalSpent": "900.00", "purchaseCount": 9}
    assert stats["byRegion"] == [{"value": "west", "count": 3}, {"value": "east", "count": 1}]
    assert stats["byTeam"] == [{"team": {"key": "west_sales"}, "count": 3}, {"team": {"key": "east_sales"}, "count": 1}]
    # Counts that are not customer data stay global: Ann, Bob, Cat and the agent; two teams.
    assert (stats["employeeCount"], stats["teamCount"]) == (4, 2)
    assert data["east"]["stats"] == {"customerCount": 1, "totalSpent": "0.00", "memberCount": 2}
    # Ann's customers (C002, C004) are not the agent's, but her free capacity is still the real one: 50 - 2.
    assert data["ann"]["stats"] == {"customerCount": 0, "capacity": 50, "freeCapacity": 48}
    assert data["vip"]["stats"] == {"customerCount": 2, "totalSpent": "300.00"}
    admin = await api.data(query, variables)
    assert (admin["stats"]["customerCount"], admin["ann"]["stats"]["customerCount"]) == (6, 2)


RECORDS = {
    "recordPurchase": ("PurchaseInput", "{customerId: $c, amount: 10}", "purchase { amount }"),
    "recordInteraction": ("InteractionInput", "{customerId: $c, kind: CALL}", "interaction { kind }"),
    "submitFeedback": ("FeedbackInput", "{customerId: $c, kind: PRAISE}", "feedback { kind }"),
}


@pytest.mark.parametrize("mutation", sorted(RECORDS))
async def test_an_agent_records_activity_only_for_their_customers(
    api: Api, world: World, engine: AsyncEngine, scoped: str, mutation: str
) -> None:
    _, value, selection = RECORDS[mutation]
    document = f"mutation ($c: ID!) {{ {mutation}(input: {value}) {{ {selection} userErrors {{ field code message }} }} }}"
    before = await snapshot(engine)
    for customer in (global_id("Customer", world.customers["C002"]), global_id("Customer", 999_999)):
        refused = (await api.data(document, {"c": customer}, token=scoped))[mutation]
        [error] = refused["userErrors"]
        assert (error["field"], error["code"]) == ("input.customerId", "FORBIDDEN")
        assert "their teams' customers" in error["message"]
        assert list(refused.values())[0] is None
    assert await snapshot(engine) == before
    for code in ("C000", "C003"):
        done = (await api.data(document, {"c": global_id("Customer", world.customers[code])}, token=scoped))[mutation]
        assert done["userErrors"] == [] and list(done.values())[0] is not None
    # A manager is not limited.
    done = (await api.data(document, {"c": global_id("Customer", world.customers["C002"])}))[mutation]
    assert done["userErrors"] == []


async def test_an_agents_page_costs_a_constant_number_of_statements(
    api: Api, engine: AsyncEngine, agent_token: str
) -> None:
    """The scope is a predicate in each statement, never a check per row: the statement count of a page
    does not grow with its size."""
    async with session_factory(engine)() as session:
        world = await _big_world(session)
        agent = await session.scalar(select(models.Employee.id).where(models.Employee.email == "agent@example.com"))
        assert agent is not None
        session.add(models.TeamMember(team_id=world, employee_id=agent, role="member"))
        await session.commit()
    counts = {}
    for first in (10, 100):
        with counted_statements(engine) as statements:
            data = await api.data(PAGE_QUERY, {"first": first}, token=agent_token)
        assert len(data["customers"]["edges"]) == first
        assert data["customers"]["totalCount"] == 110
        counts[first] = len([s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))])
    assert counts[10] == counts[100], counts
    # The admin's bound (tests/schema/test_statement_count.py) plus freeCapacity's own count, plus one
    # employee load: the page's team lists the agent as a member, who is nobody's manager on the page.
    assert counts[100] <= 22, counts


async def _big_world(session: AsyncSession) -> int:
    """120 customers: 110 in the returned team (the agent's), 10 in another one."""
    world = await build_world(session, customer_count=120)
    west, east = world.teams["west_sales"], world.teams["east_sales"]
    rows = (await session.scalars(select(models.Customer).order_by(models.Customer.code))).all()
    for index, row in enumerate(rows):
        row.team_id = west if index >= 10 else east
    await session.flush()
    return west
