"""Hostile rule text through GraphQL: located diagnostics, never an internal error or a stalled request.

A chain of 400 segments (checkRules, saveRuleset, explain), a `where` condition
nested deeper than SQLite's parser takes, and a `like` pattern with fifteen stars
that kept the old evaluator busy for about half an hour.
"""

from __future__ import annotations

import time

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.dsl.extent import MAX_DEPTH
from segmenta.storage import models
from segmenta.storage.engine import session_factory
from tests.dsl.test_like import PATHOLOGICAL
from tests.dsl.test_segment_limits import alternating, chain
from tests.schema.helpers import Api, World, global_id, snapshot

CHECK = "query($s: String!) { checkRules(source: $s) { ok diagnostics { severity code message line column } } }"
SAVE = """mutation($s: String!) { saveRuleset(name: "deep", source: $s) {
  ruleset { hasErrors diagnostics { code line column } } userErrors { message } } }"""
EXPLAIN = "query($id: ID!, $s: String) { explain(customerId: $id, source: $s) { team { key } rules { matched } } }"
WHERE = "query($w: String!) { customers(first: 100, where: $w) { totalCount } }"
LONG_CHAIN = chain(400).replace("-> team a,", "-> team east_sales,")
# The first segment over the limit: `segment s25 = s24`, its reference at column 15.
FIRST_TOO_DEEP = {"code": "too-deep", "line": MAX_DEPTH + 1, "column": 15}


async def test_check_rules_reports_a_long_segment_chain(api: Api, world: World) -> None:
    result = (await api.data(CHECK, {"s": LONG_CHAIN}))["checkRules"]
    assert result["ok"] is False
    [diagnostic] = result["diagnostics"]
    assert {key: diagnostic[key] for key in FIRST_TOO_DEEP} == FIRST_TOO_DEEP
    assert "segment chain too deep" in diagnostic["message"]


async def test_save_ruleset_stores_the_chain_with_its_error(api: Api, world: World) -> None:
    payload = (await api.data(SAVE, {"s": LONG_CHAIN}))["saveRuleset"]
    assert payload["userErrors"] == []
    assert payload["ruleset"]["hasErrors"] is True
    assert payload["ruleset"]["diagnostics"] == [FIRST_TOO_DEEP]


async def test_explain_refuses_the_chain_with_rule_errors(api: Api, world: World, engine: AsyncEngine) -> None:
    before = await snapshot(engine)
    customer = global_id("Customer", world.customers["C001"])
    [error] = await api.errors(EXPLAIN, {"id": customer, "s": LONG_CHAIN})
    assert error["extensions"]["code"] == "RULE_ERRORS"
    assert [{key: d[key] for key in FIRST_TOO_DEEP} for d in error["extensions"]["diagnostics"]] == [FIRST_TOO_DEEP]
    assert await snapshot(engine) == before


async def test_where_takes_the_deepest_condition_allowed_and_refuses_deeper(api: Api, world: World) -> None:
    data = await api.data(WHERE, {"w": alternating(MAX_DEPTH)})
    assert data["customers"]["totalCount"] == len(world.customers)  # no customer is in region x0
    # 40 levels: SQLite's parser used to refuse this SQL ("parser stack overflow"), an internal error.
    [error] = await api.errors(WHERE, {"w": alternating(40)})
    assert error["extensions"]["code"] == "INVALID_CONDITION"
    assert [d["code"] for d in error["extensions"]["diagnostics"]] == ["too-deep"]


async def test_explain_with_a_pathological_like_pattern_answers_at_once(
    api: Api, world: World, engine: AsyncEngine
) -> None:
    key = world.customers["C001"]
    async with session_factory(engine)() as session:
        await session.execute(update(models.Customer).where(models.Customer.id == key).values(name="a" * 200))
        await session.commit()
    source = f'slow: name like "{PATHOLOGICAL}" -> team east_sales\notherwise -> team west_sales\n'
    started = time.perf_counter()
    explained = (await api.data(EXPLAIN, {"id": global_id("Customer", key), "s": source}))["explain"]
    # The old evaluator needed minutes for five stars over these 200 characters; now it is milliseconds.
    assert time.perf_counter() - started < 10
    assert explained["team"] == {"key": "west_sales"} and explained["rules"][0]["matched"] is False
