"""Rows of a table's columns stand in for ORM entities where the loaders read them (schema/loader_statements.py):
a customer, team or employee reads the same through either."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.storage import models
from segmenta.storage.engine import session_factory
from tests.schema.helpers import Api, World, global_id

CUSTOMER = """
  id code name kind industry size region city country lifecycle purchasingPower channel email phone address age gender
  income occupation birthday createdAt updatedAt assignmentLocked decidingRule tags manualTags ruleTags attributes
  segments { id key name description kind createdAt }
  metrics {
    purchaseCount totalSpent avgOrderValue firstPurchaseAt lastPurchaseAt daysSincePurchase avgSatisfaction nps
    feedbackCount complaintCount openComplaints interactionCount lastContactAt daysSinceContact tenureDays daysToBirthday
  }
"""
TEAM = "id key name description kind strategy monthlyTarget createdAt active"
EMPLOYEE = "id name email level specialties regions capacity active monthlyTarget createdAt"


def test_every_mapped_attribute_is_named_as_its_column() -> None:
    """What the stand-in relies on: a row of the table's columns has an attribute for each of the entity's."""
    for mapper in models.Base.registry.mappers:
        for attribute in mapper.column_attrs:
            column = attribute.columns[0]
            assert (column.name, column.key) == (attribute.key, attribute.key), (mapper.class_.__name__, attribute.key)


async def test_a_customer_its_team_and_manager_read_the_same_from_rows_as_from_entities(
    api: Api, engine: AsyncEngine, world: World
) -> None:
    async with session_factory(engine)() as session:
        customer = await session.get(models.Customer, world.customers["C001"])
        assert customer is not None
        customer.birthday = date(1980, 2, 29)
        customer.email = "c001@example.com"
        customer.age = 44.5
        customer.total_spent = Decimal("1234.56")
        customer.first_purchase_at = datetime(2024, 1, 2, 3, 4, 5)
        customer.last_purchase_at = datetime(2025, 6, 7, 8, 9, 10, 123456)
        customer.last_contact_at = datetime(2025, 5, 1)
        customer.survey_sum, customer.survey_count = 13.0, 3
        customer.deciding_rule = "west customers"
        team = await session.get(models.Team, world.teams["west_sales"])
        assert team is not None
        team.monthly_target, team.description = Decimal("5000.10"), "The west"
        bob = await session.get(models.Employee, world.employees["bob"])
        assert bob is not None
        bob.monthly_target, bob.specialties, bob.regions = Decimal("99.99"), ["retail"], ["west"]
        await session.commit()
    key = global_id("Customer", world.customers["C001"])
    related = f"team {{ {TEAM} }} manager {{ {EMPLOYEE} }}"
    # One request per path, so that no path finds its rows in a loader another one filled.
    page = await api.data(f"{{ customers(first: 100, orderBy: CODE_ASC) {{ nodes {{ {CUSTOMER} {related} }} }} }}")
    joined = await api.data(f"query ($id: ID!) {{ customer(id: $id) {{ {CUSTOMER} {related} }} }}", {"id": key})
    by_id = await api.data(f"query ($id: ID!) {{ node(id: $id) {{ ... on Customer {{ {CUSTOMER} }} }} }}", {"id": key})
    entities = await api.data(
        f"""{{ team(key: "west_sales") {{ {TEAM} customers(first: 100, orderBy: CODE_ASC) {{ nodes {{ {CUSTOMER} }} }} }}
              employees {{ {EMPLOYEE} }} }}"""
    )
    # Through entities: the team by key, its customers (a child list), every employee.
    entity_customer = _only(entities["team"]["customers"]["nodes"], key)
    entity_team = {name: value for name, value in entities["team"].items() if name != "customers"}
    entity_manager = _only(entities["employees"], global_id("Employee", world.employees["bob"]))
    assert entity_customer["birthday"] == "1980-02-29" and entity_team["monthlyTarget"] == "5000.10"
    # Through rows: the page (with rows by key for team and manager), the customer joined with both, node(id).
    for read in (_only(page["customers"]["nodes"], key), joined["customer"]):
        assert {name: value for name, value in read.items() if name not in ("team", "manager")} == entity_customer
        assert (read["team"], read["manager"]) == (entity_team, entity_manager)
    assert by_id["node"] == entity_customer


def _only(nodes: list[dict[str, Any]], key: str) -> dict[str, Any]:
    found = [node for node in nodes if node["id"] == key]
    assert len(found) == 1
    return found[0]
