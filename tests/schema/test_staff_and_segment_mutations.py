"""Employee, team and segment mutations: happy paths and userErrors that write nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.schema.helpers import Api, World, global_id, snapshot


async def refused(api: Api, engine: AsyncEngine, query: str, variables: dict[str, Any], name: str) -> dict[str, Any]:
    before = await snapshot(engine)
    payload = (await api.data(query, variables))[name]
    assert len(payload["userErrors"]) == 1, payload
    assert await snapshot(engine) == before
    return payload["userErrors"][0]


CREATE_EMPLOYEE = """
mutation($input: EmployeeInput!) { createEmployee(input: $input) {
  employee { id name email level specialties regions capacity active monthlyTarget }
  userErrors { field message code } } }
"""
UPDATE_EMPLOYEE = """
mutation($id: ID!, $input: EmployeePatch!) { updateEmployee(id: $id, input: $input) {
  employee { name level capacity active } userErrors { field message code } } }
"""


async def test_create_and_update_an_employee(api: Api, engine: AsyncEngine) -> None:
    created = (
        await api.data(
            CREATE_EMPLOYEE,
            {"input": {"name": "Dan Li", "email": "dan@example.com", "level": "LEAD", "specialties": ["finance"],
                       "regions": ["east"], "capacity": 25, "monthlyTarget": 1000}},
        )
    )["createEmployee"]
    assert created["userErrors"] == []
    employee = created["employee"]
    assert employee["level"] == "LEAD"
    assert (employee["specialties"], employee["regions"], employee["capacity"], employee["active"]) == (
        ["finance"], ["east"], 25, True,
    )

    updated = (await api.data(UPDATE_EMPLOYEE, {"id": employee["id"], "input": {"capacity": None, "active": False}}))[
        "updateEmployee"
    ]
    assert updated == {"employee": {"name": "Dan Li", "level": "LEAD", "capacity": None, "active": False}, "userErrors": []}

    error = await refused(
        api, engine, CREATE_EMPLOYEE, {"input": {"name": "Dup", "email": "dan@example.com"}}, "createEmployee"
    )
    assert (error["field"], error["code"]) == ("input.email", "CONFLICT")
    error = await refused(api, engine, UPDATE_EMPLOYEE, {"id": employee["id"], "input": {"capacity": -1}}, "updateEmployee")
    assert error["field"] == "input.capacity"
    error = await refused(api, engine, UPDATE_EMPLOYEE, {"id": "bogus", "input": {"name": "X"}}, "updateEmployee")
    assert (error["field"], error["code"]) == ("id", "INVALID_ID")


CREATE_TEAM = """
mutation($input: TeamInput!) { createTeam(input: $input) {
  team { id key name kind strategy description } userErrors { field message code } } }
"""
UPDATE_TEAM = """
mutation($key: String, $id: ID, $input: TeamPatch!) { updateTeam(key: $key, id: $id, input: $input) {
  team { key name strategy } userErrors { field message code } } }
"""


async def test_create_and_update_a_team(api: Api, engine: AsyncEngine, world: World) -> None:
    created = (await api.data(CREATE_TEAM, {"input": {"key": "vip_desk", "name": "VIP desk", "kind": "PROFESSIONAL",
                                                      "strategy": "LEAST_LOADED"}}))["createTeam"]
    assert created["userErrors"] == []
    assert created["team"]["kind"] == "PROFESSIONAL"
    assert created["team"]["strategy"] == "LEAST_LOADED"

    by_key = (await api.data(UPDATE_TEAM, {"key": "vip_desk", "input": {"strategy": "MANUAL"}}))["updateTeam"]
    assert by_key == {"team": {"key": "vip_desk", "name": "VIP desk", "strategy": "MANUAL"}, "userErrors": []}
    by_id = (await api.data(UPDATE_TEAM, {"id": created["team"]["id"], "input": {"name": "VIP"}}))["updateTeam"]
    assert by_id["team"]["name"] == "VIP"

    error = await refused(api, engine, CREATE_TEAM, {"input": {"key": "east_sales", "name": "Again"}}, "createTeam")
    assert (error["field"], error["code"]) == ("input.key", "CONFLICT")
    error = await refused(api, engine, CREATE_TEAM, {"input": {"key": "has space", "name": "Bad"}}, "createTeam")
    assert error["field"] == "input.key"
    error = await refused(api, engine, UPDATE_TEAM, {"input": {"name": "X"}}, "updateTeam")
    assert error["field"] == "key"
    error = await refused(api, engine, UPDATE_TEAM, {"key": "nope", "input": {"name": "X"}}, "updateTeam")
    assert (error["field"], error["code"]) == ("key", "NOT_FOUND")
    error = await refused(
        api, engine, UPDATE_TEAM, {"key": "vip_desk", "input": {"key": "east_sales"}}, "updateTeam"
    )
    assert (error["field"], error["code"]) == ("input.key", "CONFLICT")


ADD_MEMBER = """
mutation($team: String!, $employee: ID!, $role: TeamRole) { addTeamMember(teamKey: $team, employeeId: $employee, role: $role) {
  team { key members { role employee { name } } } employee { name } userErrors { field message code } } }
"""
REMOVE_MEMBER = """
mutation($team: String!, $employee: ID!) { removeTeamMember(teamKey: $team, employeeId: $employee) {
  team { key members { employee { name } } } employee { name } userErrors { field message code } } }
"""


async def test_team_membership(api: Api, engine: AsyncEngine, world: World) -> None:
    cat = global_id("Employee", world.employees["cat"])
    added = (await api.data(ADD_MEMBER, {"team": "west_sales", "employee": cat}))["addTeamMember"]
    assert added["userErrors"] == []
    assert {(member["role"], member["employee"]["name"]) for member in added["team"]["members"]} == {
        ("LEADER", "Bob Wu"), ("MEMBER", "Cat Ng"),
    }
    promoted = (await api.data(ADD_MEMBER, {"team": "west_sales", "employee": cat, "role": "LEADER"}))["addTeamMember"]
    assert ("LEADER", "Cat Ng") in {(member["role"], member["employee"]["name"]) for member in promoted["team"]["members"]}

    removed = (await api.data(REMOVE_MEMBER, {"team": "west_sales", "employee": cat}))["removeTeamMember"]
    assert removed["userErrors"] == []
    assert removed["employee"] == {"name": "Cat Ng"}
    assert [member["employee"]["name"] for member in removed["team"]["members"]] == ["Bob Wu"]

    error = await refused(api, engine, REMOVE_MEMBER, {"team": "west_sales", "employee": cat}, "removeTeamMember")
    assert (error["field"], error["code"]) == ("employeeId", "NOT_FOUND")
    error = await refused(api, engine, ADD_MEMBER, {"team": "nope", "employee": cat}, "addTeamMember")
    assert (error["field"], error["code"]) == ("teamKey", "NOT_FOUND")
    error = await refused(api, engine, ADD_MEMBER, {"team": "west_sales", "employee": "zzz"}, "addTeamMember")
    assert (error["field"], error["code"]) == ("employeeId", "INVALID_ID")


SEGMENT_OUT = "segment { key kind size customers(first: 100, orderBy: CODE_ASC) { edges { node { code } } } } userErrors { field message code }"
CREATE_SEGMENT = f"mutation($input: SegmentInput!) {{ createSegment(input: $input) {{ {SEGMENT_OUT} }} }}"
ADD = f"mutation($key: String!, $ids: [ID!]!) {{ addToSegment(segmentKey: $key, customerIds: $ids) {{ {SEGMENT_OUT} }} }}"
REMOVE = f"mutation($key: String!, $ids: [ID!]!) {{ removeFromSegment(segmentKey: $key, customerIds: $ids) {{ {SEGMENT_OUT} }} }}"
MOVE = """
mutation($from: String!, $to: String!, $ids: [ID!]!) { moveToSegment(fromKey: $from, toKey: $to, customerIds: $ids) {
  segment { key size } fromSegment { key size } userErrors { field message code } } }
"""


def codes(payload: dict[str, Any]) -> list[str]:
    return [edge["node"]["code"] for edge in payload["segment"]["customers"]["edges"]]


async def test_manual_segments(api: Api, engine: AsyncEngine, world: World) -> None:
    ids = {code: global_id("Customer", key) for code, key in world.customers.items()}
    created = (await api.data(CREATE_SEGMENT, {"input": {"key": "watch", "name": "Watch list"}}))["createSegment"]
    assert created["userErrors"] == []
    assert (created["segment"]["kind"], created["segment"]["size"]) == ("MANUAL", 0)

    added = (await api.data(ADD, {"key": "watch", "ids": [ids["C001"], ids["C002"], ids["C001"]]}))["addToSegment"]
    assert codes(added) == ["C001", "C002"]
    again = (await api.data(ADD, {"key": "watch", "ids": [ids["C002"]]}))["addToSegment"]
    assert again["segment"]["size"] == 2
    removed = (await api.data(REMOVE, {"key": "watch", "ids": [ids["C001"]]}))["removeFromSegment"]
    assert codes(removed) == ["C002"]

    moved = (await api.data(MOVE, {"from": "watch", "to": "vip", "ids": [ids["C002"]]}))["moveToSegment"]
    assert moved == {"segment": {"key": "vip", "size": 3}, "fromSegment": {"key": "watch", "size": 0}, "userErrors": []}

    error = await refused(api, engine, CREATE_SEGMENT, {"input": {"key": "vip", "name": "Dup"}}, "createSegment")
    assert (error["field"], error["code"]) == ("input.key", "CONFLICT")
    error = await refused(api, engine, ADD, {"key": "high_value", "ids": [ids["C001"]]}, "addToSegment")
    assert error["field"] == "segmentKey"
    error = await refused(api, engine, ADD, {"key": "nope", "ids": [ids["C001"]]}, "addToSegment")
    assert (error["field"], error["code"]) == ("segmentKey", "NOT_FOUND")
    error = await refused(api, engine, ADD, {"key": "vip", "ids": [ids["C001"], "junk"]}, "addToSegment")
    assert (error["field"], error["code"]) == ("customerIds", "INVALID_ID")
    error = await refused(api, engine, ADD, {"key": "vip", "ids": [global_id("Customer", 9999)]}, "addToSegment")
    assert (error["field"], error["code"]) == ("customerIds", "NOT_FOUND")
    error = await refused(api, engine, MOVE, {"from": "vip", "to": "vip", "ids": [ids["C000"]]}, "moveToSegment")
    assert error["field"] == "toKey"


@pytest.mark.parametrize(
    "mutation",
    [
        'createEmployee(input: {name: "X", email: "x@example.com"}) { userErrors { code } }',
        'createTeam(input: {key: "x", name: "X"}) { userErrors { code } }',
    ],
)
async def test_managers_cannot_change_staff(api: Api, tokens: dict[str, str], engine: AsyncEngine, mutation: str) -> None:
    before = await snapshot(engine)
    errors = await api.errors(f"mutation {{ {mutation} }}", token=tokens["manager"])
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert await snapshot(engine) == before
