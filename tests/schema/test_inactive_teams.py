"""Deactivating a team through the API (docs/domain.md, "Inactive teams"): it takes no new customers in
real time or in runs, the next run moves its customers on and reports them, and reactivating it
restores its rules.  World: C000..C005, even ones east (east_sales), odd ones west (west_sales)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.schema.helpers import Api, World, global_id, snapshot
from tests.schema.test_routing_api import ACTIVATE, save

RULES = "east: region = east -> team east_sales, tag eastern\nwest: region = west -> team west_sales\n"
UPDATE = """mutation ($active: Boolean) {
  updateTeam(key: "east_sales", input: {active: $active}) { team { key active } userErrors { field message code } }
}"""
APPLY = """mutation ($id: ID!) { applyRuleset(id: $id) { run { status summary {
  unmatched inactiveTeams ruleHits { label count } moves { from { key } to { key } count } teamCounts { team { key } count }
} } userErrors { code } } }"""
TEAMS = """{ customers(first: 100, orderBy: CODE_ASC) { nodes { code team { key } tags } } }"""
CREATE = """mutation { createCustomer(input: {code: "N1", name: "New east", region: "east"}) {
  customer { team { key } tags } userErrors { code } } }"""


async def _teams(api: Api) -> dict[str, str | None]:
    nodes = (await api.data(TEAMS))["customers"]["nodes"]
    return {node["code"]: node["team"] and node["team"]["key"] for node in nodes}


async def test_an_inactive_team_takes_no_customers_and_its_customers_are_reported(api: Api, world: World) -> None:
    ruleset = await save(api, RULES)
    assert (await api.data(ACTIVATE, {"id": ruleset["id"]}))["activateRuleset"]["userErrors"] == []
    first = (await api.data(APPLY, {"id": ruleset["id"]}))["applyRuleset"]["run"]
    assert first["summary"]["inactiveTeams"] == []

    deactivated = (await api.data(UPDATE, {"active": False}))["updateTeam"]
    assert deactivated == {"team": {"key": "east_sales", "active": False}, "userErrors": []}
    # Until the next run the team's customers stay where they are: nothing is lost or moved silently.
    assert (await _teams(api))["C000"] == "east_sales"

    # Real time: a new customer the rules would send to the inactive team gets no team (its tag still applies).
    created = (await api.data(CREATE))["createCustomer"]
    assert created["customer"]["team"] is None and "eastern" in created["customer"]["tags"]

    # explain says what real time does with it.
    explain = """query ($id: ID!) { explain(customerId: $id) { team { key } notes } }"""
    explained = (await api.data(explain, {"id": global_id("Customer", world.customers["C000"])}))["explain"]
    assert explained["team"] == {"key": "east_sales"}
    assert explained["notes"][-1] == (
        "team east_sales is inactive: keeps team east_sales and manager Ann Lee (the next run passes over this rule's team)"
    )

    # Real time, an existing customer of the team re-routed by an update: it keeps its assignment.
    update = """mutation ($id: ID!) { updateCustomer(id: $id, input: {city: "Boston"}) {
      customer { city team { key } } userErrors { code } } }"""
    updated = (await api.data(update, {"id": global_id("Customer", world.customers["C002"])}))["updateCustomer"]
    assert updated == {"customer": {"city": "Boston", "team": {"key": "east_sales"}}, "userErrors": []}

    run = (await api.data(APPLY, {"id": ruleset["id"]}))["applyRuleset"]["run"]
    summary = run["summary"]
    assert run["status"] == "SUCCEEDED"
    assert summary["inactiveTeams"] == ["east_sales"]
    assert summary["unmatched"] == 4  # C000, C002, C004 and N1: they need a team
    assert {"from": {"key": "east_sales"}, "to": None, "count": 3} in summary["moves"]
    assert [hit["label"] for hit in summary["ruleHits"]] == ["west"]
    teams = await _teams(api)
    assert [code for code, team in teams.items() if team is None] == ["C000", "C002", "C004", "N1"]
    assert {node["code"]: node["tags"] for node in (await api.data(TEAMS))["customers"]["nodes"]}["C000"].count("eastern") == 1

    reactivated = (await api.data(UPDATE, {"active": True}))["updateTeam"]
    assert reactivated["team"]["active"] is True
    again = (await api.data(APPLY, {"id": ruleset["id"]}))["applyRuleset"]["run"]["summary"]
    assert (again["inactiveTeams"], again["unmatched"]) == ([], 0)
    assert (await _teams(api))["C000"] == "east_sales"


async def test_active_cannot_be_null_and_a_refusal_changes_nothing(api: Api, world: World, engine: AsyncEngine) -> None:
    before = await snapshot(engine)
    refused = (await api.data(UPDATE, {"active": None}))["updateTeam"]
    assert refused["team"] is None
    assert [(error["field"], error["code"]) for error in refused["userErrors"]] == [("input.active", "REQUIRED")]
    assert await snapshot(engine) == before


async def test_only_an_admin_deactivates_a_team(api: Api, world: World, tokens: dict[str, str]) -> None:
    [error] = await api.errors(UPDATE, {"active": False}, token=tokens["manager"])
    assert error["extensions"]["code"] == "FORBIDDEN"
    teams = (await api.data('{ team(key: "east_sales") { active } }'))["team"]
    assert teams == {"active": True}
