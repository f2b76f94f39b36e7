"""Tasks in the API: the mutations with their userErrors, the lists and their filters, an agent's scope,
and constant statement counts for pages of tasks and for customers' and employees' task lists."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.storage import models
from segmenta.storage.engine import session_factory
from segmenta.storage.models import utcnow
from tests.schema.helpers import Api, World, build_world, global_id, snapshot
from tests.schema.test_agent_scope import agent_id
from tests.schema.test_statement_count import counted_statements

TASK_FIELDS = "id kind title status overdue source rule dueAt customer { code } assignee { name } team { key }"
CREATE = f"""mutation ($input: CreateTaskInput!) {{
  createTask(input: $input) {{ task {{ {TASK_FIELDS} }} userErrors {{ field message code }} }}
}}"""
COMPLETE = f"""mutation ($input: CompleteTaskInput!) {{
  completeTask(input: $input) {{ task {{ {TASK_FIELDS} outcome completedBy {{ name }} }} userErrors {{ field code }} }}
}}"""
LIST = """query ($filter: TaskFilter, $order: TaskOrder!, $first: Int) {
  tasks(filter: $filter, orderBy: $order, first: $first) { totalCount edges { node { kind customer { code } } } }
}"""


def _select_count(statements: list[str]) -> int:
    return len([s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))])


async def _tasks_for_every_customer(engine: AsyncEngine, world: World) -> None:
    now = utcnow()
    async with session_factory(engine)() as session:
        for index, (code, customer_id) in enumerate(sorted(world.customers.items())):
            for kind, due in (("call", now - timedelta(days=1)), ("visit", now + timedelta(days=index + 1))):
                session.add(models.Task(customer_id=customer_id, employee_id=world.employees["ann" if index % 2 else "bob"],
                                        kind=kind, title=f"{kind} {code}", due_at=due, source="system"))
        await session.commit()


async def test_create_complete_and_the_userErrors(api: Api, engine: AsyncEngine, world: World) -> None:
    customer = global_id("Customer", world.customers["C001"])  # west_sales, managed by Bob
    due = (utcnow() + timedelta(days=2)).isoformat()
    created = (await api.data(CREATE, {"input": {"customerId": customer, "kind": "call_back", "dueAt": due}}))["createTask"]
    assert created["userErrors"] == []
    task = created["task"]
    assert (task["kind"], task["title"], task["status"], task["source"], task["overdue"]) == (
        "call_back", "Call back", "OPEN", "MANUAL", False)
    assert (task["assignee"], task["customer"]) == ({"name": "Bob Wu"}, {"code": "C001"})

    before = await snapshot(engine)
    again = (await api.data(CREATE, {"input": {"customerId": customer, "kind": "call_back", "dueAt": due}}))["createTask"]
    assert again == {"task": None, "userErrors": [{"field": "input.kind", "message": again["userErrors"][0]["message"],
                                                    "code": "CONFLICT"}]}
    bad = (await api.data(CREATE, {"input": {"customerId": customer, "kind": "x", "dueAt": "2999-01-01T00:00:00"}}))["createTask"]
    assert [(e["field"], e["code"]) for e in bad["userErrors"]] == [("input.dueAt", "OUT_OF_RANGE")]
    assert await snapshot(engine) == before

    done = (await api.data(COMPLETE, {"input": {"id": task["id"], "outcome": "reached", "interactionKind": "VISIT"}}))
    assert done["completeTask"]["task"]["status"] == "DONE"
    assert done["completeTask"]["task"]["outcome"] == "reached"
    contact = await api.data("query ($id: ID!) { customer(id: $id) { metrics { daysSinceContact } interactions { edges { node { kind summary } } } } }",
                             {"id": customer})
    assert contact["customer"]["metrics"]["daysSinceContact"] == 0
    assert contact["customer"]["interactions"]["edges"][0]["node"] == {"kind": "VISIT", "summary": "Call back: reached"}
    twice = (await api.data(COMPLETE, {"input": {"id": task["id"]}}))["completeTask"]
    assert twice["userErrors"] == [{"field": "input.id", "code": "CONFLICT"}]


async def test_filters_overdue_and_order(api: Api, engine: AsyncEngine, world: World) -> None:
    await _tasks_for_every_customer(engine, world)
    overdue = (await api.data(LIST, {"filter": {"overdue": True}, "order": "DUE_AT_ASC"}))["tasks"]
    assert overdue["totalCount"] == 6 and {edge["node"]["kind"] for edge in overdue["edges"]} == {"call"}
    ann = global_id("Employee", world.employees["ann"])
    visits = (await api.data(LIST, {"filter": {"kind": "visit", "assigneeId": ann}, "order": "DUE_AT_DESC"}))["tasks"]
    assert [edge["node"]["customer"]["code"] for edge in visits["edges"]] == ["C005", "C003", "C001"]
    nothing = (await api.data(LIST, {"filter": {"status": "DONE"}, "order": "DUE_AT_ASC"}))["tasks"]
    assert nothing["totalCount"] == 0


async def test_an_agent_sees_and_completes_only_tasks_in_their_scope(
    api: Api, engine: AsyncEngine, world: World, agent_token: str
) -> None:
    agent = await agent_id(engine)
    now = utcnow()
    async with session_factory(engine)() as session:
        session.add(models.TeamMember(team_id=world.teams["west_sales"], employee_id=agent, role="member"))
        ids = {}
        for name, customer, employee in (("theirs", "C001", None), ("own", "C002", agent), ("not", "C002", None)):
            task = models.Task(customer_id=world.customers[customer], employee_id=employee, kind=name, title=name,
                               due_at=now, source="manual")
            session.add(task)
            await session.flush()
            ids[name] = global_id("Task", task.id)
        await session.commit()
    seen = (await api.data(LIST, {"order": "DUE_AT_ASC"}, token=agent_token))["tasks"]
    assert sorted(edge["node"]["kind"] for edge in seen["edges"]) == ["own", "theirs"]
    mine = await api.data("{ myTasks { edges { node { kind } } } }", token=agent_token)
    assert [edge["node"]["kind"] for edge in mine["myTasks"]["edges"]] == ["own"]
    node = await api.data("query ($id: ID!) { node(id: $id) { id } }", {"id": ids["not"]}, token=agent_token)
    assert node["node"] is None
    refused = (await api.data(COMPLETE, {"input": {"id": ids["not"]}}, token=agent_token))["completeTask"]
    assert refused == {"task": None, "userErrors": [{"field": "input.id", "code": "FORBIDDEN"}]}
    done = (await api.data(COMPLETE, {"input": {"id": ids["theirs"]}}, token=agent_token))["completeTask"]
    assert done["task"]["status"] == "DONE"


TASK_PAGE = """query ($first: Int!) {
  tasks(first: $first) { totalCount edges { node { kind overdue customer { code manager { name } } assignee { name } team { key } } } }
}"""
NESTED = """query ($first: Int!) {
  customers(first: $first) { edges { node { code tasks(first: 1, status: OPEN) { totalCount edges { node { kind } } }
    manager { tasks(first: 2) { edges { node { kind } } } } } } }
}"""


async def test_task_pages_run_a_constant_number_of_statements(api: Api, engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        world = await build_world(session, customer_count=60)
    await _tasks_for_every_customer(engine, world)
    for query, sizes in ((TASK_PAGE, (10, 100)), (NESTED, (10, 60))):
        counts: dict[int, int] = {}
        for first in sizes:
            with counted_statements(engine) as statements:
                data: Any = await api.data(query, {"first": first})
            root = data.get("tasks") or data["customers"]
            assert len(root["edges"]) == first
            counts[first] = _select_count(statements)
        assert counts[sizes[0]] == counts[sizes[1]], (query, counts)
        assert counts[sizes[1]] <= 8, counts
