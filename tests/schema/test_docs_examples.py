"""Every GraphQL example in docs/graphql.md runs without errors (and every mutation without userErrors)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.schema.helpers import Api, World, global_id

DOC = Path(__file__).resolve().parents[2] / "docs" / "graphql.md"
EXAMPLES = re.findall(r"```graphql\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def user_errors(value: Any) -> list[Any]:
    found: list[Any] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "userErrors":
                found.extend(item)
            else:
                found.extend(user_errors(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(user_errors(item))
    return found


async def test_the_doc_has_examples_of_every_data_query_and_mutation() -> None:
    text = "\n".join(EXAMPLES)
    for name in [
        "customers(", "customer(", "customerByCode(", "segments", "segment(", "teams", "team(", "employees",
        "employee(", "feedback(", "stats", "createCustomer", "updateCustomer", "recordPurchase",
        "recordInteraction", "submitFeedback", "createEmployee", "updateEmployee", "createTeam", "updateTeam",
        "addTeamMember", "removeTeamMember", "createSegment", "addToSegment", "removeFromSegment", "moveToSegment",
    ]:
        assert name in text, name


async def test_every_example_runs(api: Api, world: World) -> None:
    variables = {
        "customer": global_id("Customer", world.customers["C000"]),
        "employee": global_id("Employee", world.employees["ann"]),
    }
    assert EXAMPLES
    for example in EXAMPLES:
        used = {name: value for name, value in variables.items() if f"${name}" in example}
        data = await api.data(example, used)
        assert user_errors(data) == [], (example, data)
