"""Every data query of docs/graphql.md against a small, fully known data set."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.storage import models
from segmenta.storage.engine import session_factory
from tests.schema.helpers import Api, World, global_id, key_of

CUSTOMER_FIELDS = """
  id code name kind industry size region lifecycle purchasingPower createdAt assignmentLocked
  team { id key name kind strategy }
  manager { id name email level }
  segments { key kind }
  tags manualTags ruleTags attributes
  metrics {
    purchaseCount totalSpent avgOrderValue firstPurchaseAt lastPurchaseAt daysSincePurchase
    productCategories avgSatisfaction nps feedbackCount complaintCount openComplaints
    interactionCount daysSinceContact tenureDays daysToBirthday
  }
"""


async def test_customer_by_code_has_every_field_and_its_relations(api: Api, world: World) -> None:
    data = await api.data(f'{{ customerByCode(code: "C000") {{ {CUSTOMER_FIELDS} }} }}')
    customer = data["customerByCode"]
    assert customer["id"] == global_id("Customer", world.customers["C000"])
    assert customer["code"] == "C000"
    assert customer["kind"] == "COMPANY"
    assert customer["size"] == "SMALL"
    assert customer["lifecycle"] == "ACTIVE"
    assert customer["purchasingPower"] is None
    assert customer["team"]["key"] == "east_sales"
    assert customer["team"]["kind"] == "REGIONAL"
    assert customer["team"]["strategy"] == "ROUND_ROBIN"
    assert customer["manager"]["email"] == "ann@example.com"
    assert customer["manager"]["level"] == "SENIOR"
    assert [segment["key"] for segment in customer["segments"]] == ["high_value", "vip"]
    assert customer["tags"] == ["newsletter", "priority"]
    assert customer["manualTags"] == ["newsletter"]
    assert customer["ruleTags"] == ["priority"]
    assert customer["attributes"] == {"score": 0, "tier": "gold"}
    assert customer["createdAt"].endswith("+00:00")


async def test_metrics_come_from_the_row_and_day_metrics_are_measured_now(api: Api, engine: AsyncEngine) -> None:
    now = datetime.utcnow()
    async with session_factory(engine)() as session:
        session.add(
            models.Customer(
                code="M1",
                name="Metrics",
                created_at=now - timedelta(days=30, hours=1),
                birthday=date(1990, (now + timedelta(days=3)).month, (now + timedelta(days=3)).day),
                purchase_count=4,
                total_spent=1000.0,
                first_purchase_at=now - timedelta(days=20),
                last_purchase_at=now - timedelta(days=10, hours=1),
                survey_count=2,
                survey_sum=9.0,
                nps_count=1,
                nps_sum=7.0,
                feedback_count=4,
                complaint_count=1,
                open_complaints=1,
                interaction_count=3,
                last_contact_at=now - timedelta(days=2, hours=1),
            )
        )
        await session.commit()
    metrics = (await api.data(f'{{ customerByCode(code: "M1") {{ {CUSTOMER_FIELDS} }} }}'))["customerByCode"]["metrics"]
    assert metrics["purchaseCount"] == 4
    assert metrics["totalSpent"] == "1000.00"
    assert metrics["avgOrderValue"] == "250.00"
    assert metrics["avgSatisfaction"] == 4.5
    assert metrics["nps"] == 7.0
    assert metrics["daysSincePurchase"] == 10
    assert metrics["daysSinceContact"] == 2
    assert metrics["tenureDays"] == 30
    assert metrics["daysToBirthday"] == 3
    assert (metrics["feedbackCount"], metrics["complaintCount"], metrics["openComplaints"]) == (4, 1, 1)
    assert metrics["interactionCount"] == 3
    assert metrics["productCategories"] == []


async def test_metrics_of_a_customer_without_activity_are_zero_or_missing(api: Api, world: World) -> None:
    metrics = (await api.data(f'{{ customerByCode(code: "C000") {{ {CUSTOMER_FIELDS} }} }}'))["customerByCode"]["metrics"]
    assert metrics["purchaseCount"] == 0
    assert metrics["avgOrderValue"] is None
    assert metrics["daysSincePurchase"] is None
    assert metrics["avgSatisfaction"] is None
    assert metrics["daysToBirthday"] is None


async def test_customer_by_id_and_unknown_ids(api: Api, world: World) -> None:
    wanted = global_id("Customer", world.customers["C003"])
    data = await api.data("query($id: ID!) { customer(id: $id) { code } }", {"id": wanted})
    assert data["customer"] == {"code": "C003"}
    missing = await api.data("query($id: ID!) { customer(id: $id) { code } }", {"id": global_id("Customer", 999999)})
    assert missing["customer"] is None
    assert (await api.data('{ customerByCode(code: "nope") { code } }'))["customerByCode"] is None


@pytest.mark.parametrize(
    "bad_id",
    [
        "12",  # a raw database key is not an ID
        "not base64!",
        global_id("Employee", 1),  # an ID of another type
        global_id("Customer", 0),
        "Q3VzdG9tZXI6LTE=",  # Customer:-1
    ],
)
async def test_malformed_or_foreign_ids_are_clear_errors(api: Api, world: World, bad_id: str) -> None:
    [error] = await api.errors("query($id: ID!) { customer(id: $id) { code } }", {"id": bad_id})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "is not a valid Customer ID" in error["message"]


async def test_ids_are_opaque_and_typed(api: Api, world: World) -> None:
    data = await api.data('{ customerByCode(code: "C000") { id team { id } manager { id } segments { id } } }')
    customer = data["customerByCode"]
    assert not customer["id"].isdigit()
    assert key_of(customer["id"]) == world.customers["C000"]
    assert customer["team"]["id"] == global_id("Team", world.teams["east_sales"])
    assert customer["manager"]["id"] == global_id("Employee", world.employees["ann"])
    assert {segment["id"] for segment in customer["segments"]} == {
        global_id("Segment", world.segments["vip"]),
        global_id("Segment", world.segments["high_value"]),
    }


async def test_customer_filters(api: Api, world: World) -> None:
    async def codes(filter_text: str) -> list[str]:
        data = await api.data(f"{{ customers(first: 100, orderBy: CODE_ASC, filter: {filter_text}) {{ edges {{ node {{ code }} }} }} }}")
        return [edge["node"]["code"] for edge in data["customers"]["edges"]]

    assert await codes("{region: \"east\"}") == ["C000", "C002", "C004"]
    assert await codes("{regionIn: [\"east\", \"west\"], size: SMALL}") == ["C000", "C004"]
    assert await codes("{sizeIn: [LARGE, ENTERPRISE]}") == ["C002", "C003"]
    assert await codes("{industry: \"finance\"}") == ["C000", "C003"]
    assert await codes("{teamKey: \"west_sales\"}") == ["C001", "C003", "C005"]
    assert await codes(f"{{managerId: \"{global_id('Employee', world.employees['ann'])}\"}}") == ["C000", "C002", "C004"]
    assert await codes("{tag: \"priority\"}") == ["C000", "C002", "C004"]
    assert await codes("{segmentKey: \"vip\"}") == ["C000", "C003"]
    assert await codes("{search: \"customer 00\"}") == ["C000", "C001", "C002", "C003", "C004", "C005"]
    assert await codes("{search: \"c005\"}") == ["C005"]
    assert await codes("{search: \"%\"}") == []
    assert await codes("{unassigned: true}") == []
    assert await codes("{lifecycle: CHURNED}") == []
    assert await codes("{kind: COMPANY, lifecycleIn: [ACTIVE]}") == ["C000", "C001", "C002", "C003", "C004", "C005"]


async def test_where_takes_a_rule_condition(api: Api, world: World) -> None:
    async def codes(condition: str) -> list[str]:
        data = await api.data(
            "query($w: String!) { customers(first: 100, orderBy: CODE_ASC, where: $w) { totalCount edges { node { code } } } }",
            {"w": condition},
        )
        found = [edge["node"]["code"] for edge in data["customers"]["edges"]]
        assert data["customers"]["totalCount"] == len(found)
        return found

    assert await codes("size >= large") == ["C002", "C003"]
    assert await codes("total_spent >= 0.3k and region = west") == ["C003", "C005"]
    assert await codes("not (region = east)") == ["C001", "C003", "C005"]
    assert await codes("tags contains newsletter and attr.score > 3") == ["C004", "C005"]
    # A bare identifier names a stored segment.
    assert await codes("vip or high_value") == ["C000", "C002", "C003", "C004"]
    both = await api.data(
        '{ customers(first: 100, where: "size >= medium", filter: {region: "west"}, orderBy: CODE_ASC) { edges { node { code } } } }'
    )
    assert [edge["node"]["code"] for edge in both["customers"]["edges"]] == ["C001", "C003", "C005"]


@pytest.mark.parametrize(
    "condition, code, column",
    [
        ("size >= and region = east", "syntax", 9),
        ("regoin = east", "unknown-field", 1),
        ("region = east and no_such_segment", "unknown-segment", 19),
        ("size > 5", "type-mismatch", 8),
    ],
)
async def test_a_bad_where_condition_is_a_located_error(
    api: Api, world: World, condition: str, code: str, column: int
) -> None:
    [error] = await api.errors(
        "query($w: String!) { customers(where: $w) { totalCount } }", {"w": condition}
    )
    assert error["extensions"]["code"] == "INVALID_CONDITION"
    diagnostic = error["extensions"]["diagnostics"][0]
    assert diagnostic["code"] == code
    assert (diagnostic["line"], diagnostic["column"]) == (1, column)
    assert f"line 1, column {column}" in error["message"]


async def test_a_misspelt_segment_gets_a_hint(api: Api, world: World) -> None:
    [error] = await api.errors('{ customers(where: "region = east and vipp") { totalCount } }')
    assert error["extensions"]["diagnostics"][0]["hint"] == "did you mean `vip`?"
    assert "did you mean `vip`?" in error["message"]


async def test_segments_teams_and_employees(api: Api, world: World) -> None:
    data = await api.data(
        """{
          segments { key kind size stats { customerCount totalSpent } customers(first: 10) { totalCount edges { node { code } } } }
          segment(key: "vip") { key name }
          teams { key members { role employee { name } } stats { customerCount memberCount totalSpent } }
          team(key: "west_sales") { key customers(first: 2, orderBy: CODE_DESC) { totalCount edges { node { code } } pageInfo { hasNextPage } } }
          employees { name active teams { key } memberships { role team { key } } stats { customerCount capacity freeCapacity } }
          activeOnly: employees(active: true) { name }
        }"""
    )
    segments = {segment["key"]: segment for segment in data["segments"]}
    assert segments["vip"]["kind"] == "MANUAL"
    assert segments["vip"]["size"] == 2
    assert segments["vip"]["stats"] == {"customerCount": 2, "totalSpent": "300.00"}
    assert [edge["node"]["code"] for edge in segments["vip"]["customers"]["edges"]] == ["C000", "C003"]
    assert segments["high_value"]["kind"] == "DYNAMIC"
    assert segments["high_value"]["customers"]["totalCount"] == 3
    assert data["segment"] == {"key": "vip", "name": "VIP"}

    teams = {team["key"]: team for team in data["teams"]}
    assert [(member["role"], member["employee"]["name"]) for member in teams["east_sales"]["members"]] == [
        ("LEADER", "Ann Lee"),
        ("MEMBER", "Bob Wu"),
    ]
    assert teams["east_sales"]["stats"] == {"customerCount": 3, "memberCount": 2, "totalSpent": "600.00"}
    assert data["team"]["customers"]["totalCount"] == 3
    assert [edge["node"]["code"] for edge in data["team"]["customers"]["edges"]] == ["C005", "C003"]
    assert data["team"]["customers"]["pageInfo"]["hasNextPage"] is True

    employees = {employee["name"]: employee for employee in data["employees"]}
    assert [team["key"] for team in employees["Bob Wu"]["teams"]] == ["east_sales", "west_sales"]
    assert employees["Ann Lee"]["stats"] == {"customerCount": 3, "capacity": 50, "freeCapacity": 47}
    assert employees["Bob Wu"]["stats"]["freeCapacity"] is None
    assert [role["role"] for role in employees["Bob Wu"]["memberships"]] == ["MEMBER", "LEADER"]
    assert {employee["name"] for employee in data["activeOnly"]} == {"Ann Lee", "Bob Wu"}


async def test_employee_by_id(api: Api, world: World) -> None:
    data = await api.data(
        "query($id: ID!) { employee(id: $id) { name customers(first: 10) { totalCount } } }",
        {"id": global_id("Employee", world.employees["bob"])},
    )
    assert data["employee"] == {"name": "Bob Wu", "customers": {"totalCount": 3}}


async def test_feedback_query_filters_and_orders_newest_first(api: Api, world: World, engine: AsyncEngine) -> None:
    now = datetime.utcnow()
    async with session_factory(engine)() as session:
        for offset, kind, status in [(3, "complaint", "open"), (2, "survey", "closed"), (1, "complaint", "resolved")]:
            session.add(
                models.Feedback(
                    customer_id=world.customers["C001"],
                    employee_id=world.employees["bob"],
                    kind=kind,
                    status=status,
                    score=4 if kind == "survey" else None,
                    created_at=now - timedelta(days=offset),
                )
            )
        await session.commit()
    data = await api.data(
        """{
          all: feedback { totalCount edges { node { kind status customer { code } employee { name } } } }
          complaints: feedback(filter: {kind: COMPLAINT}) { totalCount edges { node { status } } }
          open: feedback(filter: {statusIn: [OPEN, IN_PROGRESS]}) { totalCount }
        }"""
    )
    assert [edge["node"]["kind"] for edge in data["all"]["edges"]] == ["COMPLAINT", "SURVEY", "COMPLAINT"]
    assert data["all"]["edges"][0]["node"]["customer"] == {"code": "C001"}
    assert data["all"]["edges"][0]["node"]["employee"] == {"name": "Bob Wu"}
    assert [edge["node"]["status"] for edge in data["complaints"]["edges"]] == ["RESOLVED", "OPEN"]
    assert data["open"]["totalCount"] == 1
    by_customer = await api.data(
        "query($c: ID!) { feedback(filter: {customerId: $c}) { totalCount } }",
        {"c": global_id("Customer", world.customers["C000"])},
    )
    assert by_customer["feedback"]["totalCount"] == 0
    nested = await api.data('{ customerByCode(code: "C001") { feedback(first: 1) { totalCount edges { node { status } } pageInfo { hasNextPage } } } }')
    assert nested["customerByCode"]["feedback"] == {
        "totalCount": 3,
        "edges": [{"node": {"status": "RESOLVED"}}],
        "pageInfo": {"hasNextPage": True},
    }


async def test_stats(api: Api, world: World) -> None:
    data = await api.data(
        """{ stats {
          customerCount unassignedCustomers customersWithoutManager employeeCount teamCount segmentCount openFeedback
          customers { customerCount totalSpent purchaseCount avgOrderValue }
          bySize { value count } byRegion { value count } byTeam { team { key } count } byLifecycle { value count }
        } }"""
    )
    stats = data["stats"]
    assert (stats["customerCount"], stats["employeeCount"], stats["teamCount"], stats["segmentCount"]) == (6, 3, 2, 2)
    assert (stats["unassignedCustomers"], stats["customersWithoutManager"], stats["openFeedback"]) == (0, 0, 0)
    assert stats["customers"] == {"customerCount": 6, "totalSpent": "1500.00", "purchaseCount": 15, "avgOrderValue": "100.00"}
    assert {row["value"]: row["count"] for row in stats["bySize"]} == {"SMALL": 2, "MEDIUM": 2, "LARGE": 1, "ENTERPRISE": 1}
    assert {row["value"]: row["count"] for row in stats["byRegion"]} == {"east": 3, "west": 3}
    assert {row["team"]["key"]: row["count"] for row in stats["byTeam"]} == {"east_sales": 3, "west_sales": 3}
    assert stats["byLifecycle"] == [{"value": "ACTIVE", "count": 6}]


async def test_purchases_and_interactions_of_a_customer_newest_first(api: Api, world: World, engine: AsyncEngine) -> None:
    now = datetime.utcnow()
    customer_id = world.customers["C001"]
    async with session_factory(engine)() as session:
        session.add_all(
            [
                models.Purchase(customer_id=customer_id, amount=float(day), purchased_at=now - timedelta(days=day))
                for day in (5, 1, 3)
            ]
        )
        session.add(models.Interaction(customer_id=customer_id, employee_id=world.employees["bob"], kind="call",
                                       summary="hello", occurred_at=now))
        await session.commit()
    data = await api.data(
        """{ customerByCode(code: "C001") {
          purchases(first: 10) { totalCount edges { node { amount purchasedAt customer { code } } } }
          interactions { totalCount edges { node { kind summary employee { name } customer { code } } } }
        } }"""
    )
    purchases = data["customerByCode"]["purchases"]
    # C001 had one seeded purchase (at insert time, i.e. newest) plus the three above.
    assert purchases["totalCount"] == 4
    assert [edge["node"]["amount"] for edge in purchases["edges"]][1:] == ["1.00", "3.00", "5.00"]
    assert purchases["edges"][0]["node"]["customer"] == {"code": "C001"}
    interactions = data["customerByCode"]["interactions"]
    assert interactions == {
        "totalCount": 1,
        "edges": [{"node": {"kind": "CALL", "summary": "hello", "employee": {"name": "Bob Wu"}, "customer": {"code": "C001"}}}],
    }


async def test_assignment_history_newest_first(api: Api, world: World, engine: AsyncEngine) -> None:
    now = datetime.utcnow()
    customer_id = world.customers["C000"]
    async with session_factory(engine)() as session:
        session.add_all([
            models.AssignmentHistory(customer_id=customer_id, team_before_id=None, team_after_id=world.teams["west_sales"],
                                     manager_after_id=world.employees["bob"], cause="manual", changed_at=now - timedelta(days=2)),
            models.AssignmentHistory(customer_id=customer_id, team_before_id=world.teams["west_sales"],
                                     team_after_id=world.teams["east_sales"], manager_before_id=world.employees["bob"],
                                     manager_after_id=world.employees["ann"], cause="realtime", rule="east",
                                     changed_at=now - timedelta(days=1)),
        ])
        await session.commit()
    data = await api.data(
        '{ customerByCode(code: "C000") { assignmentHistory { cause rule runId teamBefore { key } teamAfter { key } managerBefore { name } managerAfter { name } } } }'
    )
    assert data["customerByCode"]["assignmentHistory"] == [
        {"cause": "REALTIME", "rule": "east", "runId": None, "teamBefore": {"key": "west_sales"},
         "teamAfter": {"key": "east_sales"}, "managerBefore": {"name": "Bob Wu"}, "managerAfter": {"name": "Ann Lee"}},
        {"cause": "MANUAL", "rule": None, "runId": None, "teamBefore": None,
         "teamAfter": {"key": "west_sales"}, "managerBefore": None, "managerAfter": {"name": "Bob Wu"}},
    ]


async def test_stats_by_size_and_lifecycle_answer_enums_with_one_null_group(
    api: Api, world: World, engine: AsyncEngine
) -> None:
    """Customers without a value and a word no enum member has (a hand-edited database) share the null group."""
    async with session_factory(engine)() as session:
        await session.execute(
            update(models.Customer).where(models.Customer.code == "C000").values(size=None, lifecycle=None)
        )
        await session.execute(
            update(models.Customer).where(models.Customer.code == "C001").values(size="huge", lifecycle="dormant")
        )
        await session.commit()
    stats = (await api.data("{ stats { bySize { value count } byLifecycle { value count } } }"))["stats"]
    assert sorted(stats["bySize"], key=lambda row: (-row["count"], str(row["value"]))) == stats["bySize"]
    assert {row["value"]: row["count"] for row in stats["bySize"]} == {"MEDIUM": 1, "LARGE": 1, "ENTERPRISE": 1, "SMALL": 1, None: 2}
    assert stats["byLifecycle"] == [{"value": "ACTIVE", "count": 4}, {"value": None, "count": 2}]
