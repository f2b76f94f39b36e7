"""What the workbench's preview reads of a run (docs/graphql.md, "What a run changes"): the segment
and tag gains and losses counted in SQL, and the changes of one cell of the move matrix, paged."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.storage import models
from segmenta.storage.engine import session_factory
from tests.schema.helpers import Api, World
from tests.schema.test_statement_count import counted_statements

# World (tests/schema/helpers.py): C000..C005, even ones in east_sales with the dynamic segment
# high_value and the rule tag priority, odd ones in west_sales; sizes small, medium, large, enterprise.
RULES = "big: size >= large -> team east_sales, tag big\notherwise -> team west_sales\n"
PREVIEW = """
mutation($source: String!) {
  previewRuleset(source: $source) {
    run { id status summary { moves { fromKey toKey count } segmentChanges { key added removed } tagChanges { key added removed } } }
    userErrors { code }
  }
}"""
CELL = """
query($id: ID!, $move: TeamMoveFilter, $first: Int, $after: String) {
  evaluationRun(id: $id) {
    changes(move: $move, first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes { customer { code } teamBefore { key } teamAfter { key } locked }
    }
  }
}"""


async def preview(api: Api, token: str | None = None) -> dict:
    payload = (await api.data(PREVIEW, {"source": RULES}, token=token))["previewRuleset"]
    assert payload["userErrors"] == [] and payload["run"]["status"] == "SUCCEEDED"
    return payload["run"]


async def cell(api: Api, run_id: str, move: dict | None, **arguments: object) -> dict:
    data = await api.data(CELL, {"id": run_id, "move": move, **arguments})
    return data["evaluationRun"]["changes"]


def codes(changes: dict) -> list[str]:
    return [node["customer"]["code"] for node in changes["nodes"]]


async def test_segment_and_tag_gains_and_losses_are_counted(api: Api, world: World) -> None:
    summary = (await preview(api))["summary"]
    # high_value is not defined by these rules: its three members leave it; C002 and C003 are big.
    assert summary["segmentChanges"] == [{"key": "high_value", "added": 0, "removed": 3}]
    assert summary["tagChanges"] == [
        {"key": "big", "added": 2, "removed": 0},
        {"key": "priority", "added": 0, "removed": 3},
    ]


async def test_changes_of_one_move_are_the_cell_of_the_summary_and_page(api: Api, world: World, engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        # C001 has no team (it will join west_sales); C005 is locked (its rule team is west, its own kept).
        await session.execute(update(models.Customer).where(models.Customer.code == "C001").values(team_id=None, manager_id=None))
        await session.execute(update(models.Customer).where(models.Customer.code == "C005").values(team_id=world.teams["east_sales"], assignment_locked=True))
        await session.commit()
    run = await preview(api)
    moves = {(m["fromKey"], m["toKey"]): m["count"] for m in run["summary"]["moves"]}
    assert moves == {("east_sales", "west_sales"): 2, ("west_sales", "east_sales"): 1, (None, "west_sales"): 1}
    for (from_key, to_key), count in moves.items():
        found = await cell(api, run["id"], {"fromKey": from_key, "toKey": to_key})
        assert found["totalCount"] == count == len(found["nodes"])
        for node in found["nodes"]:
            assert (node["teamBefore"] and node["teamBefore"]["key"], node["teamAfter"]["key"], node["locked"]) == (from_key, to_key, False)

    first = await cell(api, run["id"], {"fromKey": "east_sales", "toKey": "west_sales"}, first=1)
    assert first["totalCount"] == 2 and first["pageInfo"]["hasNextPage"]
    rest = await cell(api, run["id"], {"fromKey": "east_sales", "toKey": "west_sales"}, first=1, after=first["pageInfo"]["endCursor"])
    assert codes(first) + codes(rest) == ["C000", "C004"] and not rest["pageInfo"]["hasNextPage"]
    assert codes(await cell(api, run["id"], {"toKey": "west_sales"})) == ["C001"]  # fromKey left out: no team

    # No move: staying (C002 changes labels only), no team to no team, a key nobody has, the locked C005.
    everything = await cell(api, run["id"], None, first=100)
    assert "C002" in codes(everything) and "C005" in codes(everything)
    for move in ({"fromKey": "east_sales", "toKey": "east_sales"}, {}, {"fromKey": "nowhere", "toKey": "west_sales"}):
        assert (await cell(api, run["id"], move))["totalCount"] == 0


async def test_an_agent_sees_only_their_customers_of_a_cell(api: Api, world: World, agent_token: str) -> None:
    run = await preview(api)
    data = await api.data(CELL, {"id": run["id"], "move": {"fromKey": "east_sales", "toKey": "west_sales"}}, token=agent_token)
    assert data["evaluationRun"]["changes"] == {"totalCount": 0, "pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": []}


async def test_the_figures_of_many_runs_cost_one_statement(api: Api, world: World, engine: AsyncEngine) -> None:
    for _ in range(3):
        await preview(api)
    query = "{ evaluationRuns(first: 10) { nodes { summary { segmentChanges { key removed } tagChanges { key added } } } } }"
    with counted_statements(engine) as statements:
        runs = (await api.data(query))["evaluationRuns"]["nodes"]
    assert len(runs) == 3 and all(run["summary"]["tagChanges"][0] == {"key": "big", "added": 2} for run in runs)
    assert sum("json_each" in s or "json_array_elements_text" in s for s in statements) == 1
