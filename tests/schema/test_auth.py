"""Every request needs a valid bearer token; roles decide which mutations run."""

from __future__ import annotations

import os

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.schema.permissions import AUTHENTICATION_REQUIRED
from segmenta.storage import models
from segmenta.storage.engine import session_factory
from tests.schema.helpers import Api, World, snapshot

CUSTOMERS = "{ customers(first: 5) { totalCount edges { node { code } } } }"
CREATE = """
mutation { createCustomer(input: {code: "N1", name: "New"}) {
  customer { code } userErrors { field message code } } }
"""


@pytest.mark.parametrize(
    "headers, problem",
    [
        ({}, "no Authorization header"),
        ({"Authorization": "Bearer not-a-real-token"}, "unknown, revoked or expired"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "not `Bearer TOKEN`"),
        ({"Authorization": "Bearer "}, "not `Bearer TOKEN`"),
    ],
)
async def test_a_call_without_a_valid_token_gets_401_and_no_data(
    http: httpx.AsyncClient, world: World, headers: dict[str, str], problem: str
) -> None:
    response = await http.post("/graphql", json={"query": CUSTOMERS}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["message"].startswith(AUTHENTICATION_REQUIRED)
    assert problem in error["message"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_an_anonymous_call_learns_nothing_about_the_schema(http: httpx.AsyncClient) -> None:
    # Even a syntactically broken or unknown-field query is refused before validation.
    for query in ["{ __schema { types { name } } }", "{ noSuchField }", "{ broken"]:
        response = await http.post("/graphql", json={"query": query})
        assert response.status_code == 401
        assert [error["extensions"]["code"] for error in response.json()["errors"]] == ["UNAUTHENTICATED"]


async def test_an_anonymous_mutation_writes_nothing(http: httpx.AsyncClient, engine: AsyncEngine, world: World) -> None:
    before = await snapshot(engine)
    response = await http.post("/graphql", json={"query": CREATE})
    assert response.status_code == 401
    assert await snapshot(engine) == before


@pytest.mark.parametrize("role", ["admin", "manager", "agent", "viewer"])
async def test_every_role_can_read(
    api: Api, tokens: dict[str, str], agent_token: str, world: World, role: str
) -> None:
    data = await api.data(CUSTOMERS, token=agent_token if role == "agent" else tokens[role])
    # The fixture's agent manages no customer and is in no team: their scope is empty
    # (tests/schema/test_agent_scope.py covers the scope itself).
    expected = 0 if role == "agent" else len(world.customers)
    assert data["customers"]["totalCount"] == expected


@pytest.mark.parametrize("role", ["viewer", "agent"])
async def test_roles_without_customer_rights_cannot_create_customers(
    api: Api, tokens: dict[str, str], agent_token: str, engine: AsyncEngine, world: World, role: str
) -> None:
    before = await snapshot(engine)
    response = await api.post(CREATE, token=agent_token if role == "agent" else tokens[role])
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "admin, manager" in error["message"]
    assert await snapshot(engine) == before


@pytest.mark.parametrize("role", ["admin", "manager"])
async def test_admin_and_manager_can_create_customers(api: Api, tokens: dict[str, str], role: str) -> None:
    data = await api.data(CREATE, token=tokens[role])
    assert data["createCustomer"] == {"customer": {"code": "N1"}, "userErrors": []}


async def test_an_agent_records_activity_but_a_viewer_does_not(
    api: Api, tokens: dict[str, str], agent_token: str, world: World, engine: AsyncEngine
) -> None:
    customer = (await api.data('{ customerByCode(code: "C000") { id } }'))["customerByCode"]["id"]
    # The agent records for a customer of their team (C000 is an east_sales customer).
    async with session_factory(engine)() as session:
        agent = await session.scalar(select(models.Employee.id).where(models.Employee.email == "agent@example.com"))
        assert agent is not None
        session.add(models.TeamMember(team_id=world.teams["east_sales"], employee_id=agent))
        await session.commit()
    mutation = """
    mutation($customer: ID!) { recordPurchase(input: {customerId: $customer, amount: 12.5}) {
      purchase { amount } userErrors { field message } } }
    """
    before = await snapshot(engine)
    refused = await api.post(mutation, {"customer": customer}, token=tokens["viewer"])
    assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await snapshot(engine) == before
    data = await api.data(mutation, {"customer": customer}, token=agent_token)
    assert data["recordPurchase"] == {"purchase": {"amount": "12.50"}, "userErrors": []}


async def test_graphiql_page_prefills_the_token_header(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql?token=abc", headers={"Accept": "text/html"})
    assert response.status_code == 200
    page = response.text
    assert "GraphiQL" in page
    # The page reads ?token=, keeps it in localStorage and sends it as a bearer token.
    assert 'pageParameters.get("token")' in page
    assert "localStorage" in page
    assert '"Bearer " + token' in page
    assert "Authorization: Bearer TOKEN" in page


async def test_health_reports_the_database(http: httpx.AsyncClient, engine: AsyncEngine) -> None:
    response = await http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": engine.dialect.name, "process": os.getpid()}
