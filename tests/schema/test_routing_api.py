"""Rulesets and evaluation runs through GraphQL: names, payloads, permissions (docs/routing.md)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.storage import models
from segmenta.storage.engine import session_factory
from tests.schema.helpers import Api, World, global_id, key_of, snapshot

# World: C000..C005, even ones east (team east_sales), odd ones west (west_sales);
# sizes cycle small, medium, large, enterprise.  high_value (dynamic) holds the even
# ones, who also carry the rule tag `priority`.
RULES = "big: size >= large -> team east_sales, tag big\notherwise -> team west_sales\n"

SAVE = """
mutation($name: String!, $source: String!) {
  saveRuleset(name: $name, source: $source) {
    ruleset { id name version status hasErrors source diagnostics { severity code message line column endLine endColumn hint } }
    userErrors { field message code }
  }
}"""
ACTIVATE = """
mutation($id: ID!) { activateRuleset(id: $id) { ruleset { id status activatedAt } userErrors { field message code } } }"""
RUN_FIELDS = """
  id mode status asOf startedAt finishedAt error
  ruleset { id version }
  summary {
    evaluated changed unmatched locked
    teamCounts { team { key name } count }
    ruleHits { label count }
    segmentCounts { segment { key } count }
    tagCounts { tag count }
    unassignedByTeam { team { key } count }
    moves { from { key } to { key } count }
  }
"""
PREVIEW = "mutation($id: ID, $source: String) { previewRuleset(id: $id, source: $source) { run { %s } userErrors { field message code } } }" % RUN_FIELDS  # noqa: UP031  the GraphQL braces would need doubling in an f-string
APPLY = "mutation($id: ID!) { applyRuleset(id: $id) { run { %s } userErrors { field message code } } }" % RUN_FIELDS  # noqa: UP031  the GraphQL braces would need doubling in an f-string
CHANGES = """
query($id: ID!, $after: String) {
  evaluationRun(id: $id) {
    status
    changes(first: 2, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node {
        customer { code } teamBefore { key } teamAfter { key } managerBefore { name } managerAfter { name }
        segmentsAdded segmentsRemoved tagsAdded tagsRemoved decidingRule locked
      } }
    }
  }
}"""


async def save(api: Api, source: str = RULES, name: str = "policy") -> dict:
    payload = (await api.data(SAVE, {"name": name, "source": source}))["saveRuleset"]
    assert payload["userErrors"] == []
    return payload["ruleset"]


async def test_save_activate_apply_and_read_the_run(api: Api, world: World, engine: AsyncEngine) -> None:
    ruleset = await save(api)
    assert (ruleset["name"], ruleset["version"], ruleset["status"], ruleset["hasErrors"]) == ("policy", 1, "DRAFT", False)
    activated = (await api.data(ACTIVATE, {"id": ruleset["id"]}))["activateRuleset"]
    assert activated["userErrors"] == [] and activated["ruleset"]["status"] == "ACTIVE"

    applied = (await api.data(APPLY, {"id": ruleset["id"]}))["applyRuleset"]
    assert applied["userErrors"] == []
    run = applied["run"]
    assert (run["mode"], run["status"], run["error"], run["ruleset"]["id"]) == ("APPLY", "SUCCEEDED", None, ruleset["id"])
    summary = run["summary"]
    assert (summary["evaluated"], summary["changed"], summary["unmatched"], summary["locked"]) == (6, 4, 0, 0)
    assert {(c["team"]["key"], c["count"]) for c in summary["teamCounts"]} == {("east_sales", 2), ("west_sales", 4)}
    assert summary["ruleHits"] == [{"label": "big", "count": 2}, {"label": "line 2", "count": 4}]
    assert summary["tagCounts"] == [{"tag": "big", "count": 2}]
    assert {(m["from"]["key"], m["to"]["key"], m["count"]) for m in summary["moves"]} == {
        ("east_sales", "west_sales", 2),
        ("west_sales", "east_sales", 1),
    }

    first = (await api.data(CHANGES, {"id": run["id"]}))["evaluationRun"]["changes"]
    assert first["totalCount"] == 4 and first["pageInfo"]["hasNextPage"]
    second = (await api.data(CHANGES, {"id": run["id"], "after": first["pageInfo"]["endCursor"]}))["evaluationRun"]["changes"]
    assert not second["pageInfo"]["hasNextPage"]
    nodes = {edge["node"]["customer"]["code"]: edge["node"] for edge in first["edges"] + second["edges"]}
    assert set(nodes) == {"C000", "C002", "C003", "C004"}
    c000 = nodes["C000"]
    assert (c000["teamBefore"]["key"], c000["teamAfter"]["key"], c000["managerBefore"]["name"]) == ("east_sales", "west_sales", "Ann Lee")
    assert c000["managerAfter"]["name"] == "Bob Wu"  # west_sales has one active member
    assert (c000["segmentsRemoved"], c000["tagsRemoved"], c000["decidingRule"]) == (["high_value"], ["priority"], "line 2")
    assert nodes["C003"]["tagsAdded"] == ["big"] and nodes["C003"]["decidingRule"] == "big"

    async with session_factory(engine)() as session:
        teams = dict((await session.execute(select(models.Customer.code, models.Customer.team_id))).all())
    assert teams["C003"] == world.teams["east_sales"] and teams["C000"] == world.teams["west_sales"]

    again = (await api.data(APPLY, {"id": ruleset["id"]}))["applyRuleset"]["run"]
    assert again["summary"]["changed"] == 0


async def test_preview_by_source_is_allowed_to_managers_and_writes_nothing(
    api: Api, world: World, engine: AsyncEngine, tokens: dict[str, str]
) -> None:
    before = await snapshot(engine)
    payload = (await api.data(PREVIEW, {"source": RULES}, token=tokens["manager"]))["previewRuleset"]
    assert payload["userErrors"] == []
    run = payload["run"]
    assert (run["mode"], run["status"], run["ruleset"]) == ("PREVIEW", "SUCCEEDED", None)
    assert run["summary"]["changed"] == 4
    after = await snapshot(engine)
    # Only the run and its change rows are new.
    for table in ("evaluation_runs", "evaluation_changes"):
        after.pop(table), before.pop(table)
    assert after == before

    listed = await api.data("{ evaluationRuns(first: 5) { totalCount edges { node { id mode } } } }", token=tokens["viewer"])
    assert listed["evaluationRuns"]["totalCount"] == 1
    assert listed["evaluationRuns"]["edges"][0]["node"] == {"id": run["id"], "mode": "PREVIEW"}


async def test_check_rules_reports_located_diagnostics_with_database_checks(api: Api, world: World) -> None:
    result = await api.data(
        'query($s: String!) { checkRules(source: $s) { ok diagnostics { severity code line column hint } } }',
        {"s": "r: region = eats -> team nowhere\n"},
    )
    check = result["checkRules"]
    assert check["ok"] is False
    by_code = {d["code"]: d for d in check["diagnostics"]}
    assert by_code["unknown-team"]["severity"] == "ERROR" and by_code["unknown-team"]["line"] == 1
    assert by_code["unknown-value"]["severity"] == "WARNING"
    ok = await api.data('query($s: String!) { checkRules(source: $s) { ok } }', {"s": RULES})
    assert ok["checkRules"]["ok"] is True


async def test_errors_come_back_as_user_errors_and_change_nothing(api: Api, world: World, engine: AsyncEngine) -> None:
    broken = await save(api, "r: size > 5 -> team east_sales\n", name="broken")
    assert broken["hasErrors"] is True
    diagnostic = broken["diagnostics"][0]
    assert (diagnostic["severity"], diagnostic["code"], diagnostic["line"]) == ("ERROR", "type-mismatch", 1)
    draft = await save(api)
    before = await snapshot(engine)

    refused = (await api.data(ACTIVATE, {"id": broken["id"]}))["activateRuleset"]
    assert refused["ruleset"] is None and refused["userErrors"][0]["code"] == "HAS_ERRORS"
    not_active = (await api.data(APPLY, {"id": draft["id"]}))["applyRuleset"]
    assert not_active["run"] is None
    assert not_active["userErrors"] == [{"field": "id", "message": not_active["userErrors"][0]["message"], "code": "NOT_ACTIVE"}]
    bad_id = (await api.data(APPLY, {"id": global_id("Customer", 1)}))["applyRuleset"]
    assert bad_id["userErrors"][0]["code"] == "INVALID_ID"
    both = (await api.data(PREVIEW, {"id": draft["id"], "source": RULES}))["previewRuleset"]
    assert both["userErrors"][0]["code"] == "INVALID"
    missing = (await api.data(ACTIVATE, {"id": global_id("Ruleset", 9999)}))["activateRuleset"]
    assert missing["userErrors"][0]["code"] == "NOT_FOUND"
    assert await snapshot(engine) == before


async def test_rule_changes_need_the_admin_role(
    api: Api, world: World, engine: AsyncEngine, tokens: dict[str, str], agent_token: str
) -> None:
    before = await snapshot(engine)
    for token in (tokens["manager"], agent_token, tokens["viewer"]):
        errors = await api.errors(SAVE, {"name": "x", "source": RULES}, token=token)
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    for token in (agent_token, tokens["viewer"]):
        errors = await api.errors(PREVIEW, {"source": RULES}, token=token)
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert await snapshot(engine) == before


async def test_rulesets_queries(api: Api, world: World) -> None:
    first = await save(api)
    second = await save(api, RULES + "# v2\n")
    await api.data(ACTIVATE, {"id": second["id"]})
    data = await api.data(
        '{ rulesets { id version status } activeRuleset { id version } '
        'drafts: rulesets(status: DRAFT) { id } }'
    )
    assert [r["version"] for r in data["rulesets"]] == [2, 1]
    assert data["activeRuleset"] == {"id": second["id"], "version": 2}
    assert data["drafts"] == [{"id": first["id"]}]
    one = await api.data('query($id: ID!) { ruleset(id: $id) { name source } }', {"id": first["id"]})
    assert one["ruleset"] == {"name": "policy", "source": RULES}
    assert key_of(first["id"]) > 0
