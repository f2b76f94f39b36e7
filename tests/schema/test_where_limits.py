"""`customers(where: …)` costs bounded database time: a term limit with a located error, and a
share of the connection pool (storage/guard.py) that, once used up, answers BUSY while cheap
requests still get through."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain.settings import SettingError
from segmenta.dsl.parser import parse_condition
from segmenta.schema import where
from segmenta.storage import guard
from segmenta.storage.engine import session_factory
from tests.schema.helpers import Api, World

COUNT = "query($w: String!) { customers(where: $w) { totalCount } }"


@pytest.fixture
def three_terms(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(where, "MAX_TERMS", 3)
    return 3


async def test_a_condition_over_the_term_limit_is_a_located_error(api: Api, world: World, three_terms: int) -> None:
    condition = "region = east or region = west or tags contains vip or size >= large"
    [error] = await api.errors(COUNT, {"w": condition})
    assert error["extensions"]["code"] == "INVALID_CONDITION"
    [diagnostic] = error["extensions"]["diagnostics"]
    # Points at the first term past the limit: `size >= large`.
    assert (diagnostic["code"], diagnostic["line"], diagnostic["column"]) == ("too-complex", 1, condition.index("size") + 1)
    assert "4 terms (at most 3)" in diagnostic["message"]
    assert "SEGMENTA_WHERE_MAX_TERMS" in diagnostic["hint"]
    assert f"line 1, column {condition.index('size') + 1}" in error["message"]


async def test_a_condition_at_the_term_limit_is_served(api: Api, world: World, three_terms: int) -> None:
    data = await api.data(COUNT, {"w": "region = east or region = west or vip"})
    assert data["customers"]["totalCount"] == len(world.customers)


async def test_each_value_of_an_in_list_is_a_term(api: Api, world: World, three_terms: int) -> None:
    [error] = await api.errors(COUNT, {"w": "region in (east, west, north, south)"})
    assert error["extensions"]["diagnostics"][0]["code"] == "too-complex"
    assert (await api.data(COUNT, {"w": "region in (east, west, north)"}))["customers"]["totalCount"] == len(
        world.customers
    )


def test_term_limit_setting() -> None:
    assert guard.max_terms_from_environment({}) == guard.DEFAULT_MAX_TERMS == 100
    assert guard.max_terms_from_environment({"SEGMENTA_WHERE_MAX_TERMS": " 250 "}) == 250
    for raw in ("0", "-3", "many", "2.5"):
        with pytest.raises(SettingError, match="SEGMENTA_WHERE_MAX_TERMS must be a whole number"):
            guard.max_terms_from_environment({"SEGMENTA_WHERE_MAX_TERMS": raw})


# One term of the rule language and how many terms it costs.
_LEAVES = st.one_of(
    st.sampled_from(["region = east", "size >= large", "tags contains vip", "vip", "attr.tier is present"]).map(
        lambda text: (text, 1)
    ),
    st.lists(st.sampled_from(["east", "west", "north"]), min_size=1, max_size=6).map(
        lambda values: (f"region in ({', '.join(values)})", len(values))
    ),
)


def _combined(children: st.SearchStrategy[tuple[str, int]]) -> st.SearchStrategy[tuple[str, int]]:
    joined = st.tuples(st.sampled_from([" and ", " or "]), st.lists(children, min_size=2, max_size=4)).map(
        lambda parts: ("(" + parts[0].join(text for text, _ in parts[1]) + ")", sum(n for _, n in parts[1]))
    )
    negated = children.map(lambda part: (f"not ({part[0]})", part[1]))
    return joined | negated


CONDITIONS = st.recursive(_LEAVES, _combined, max_leaves=40)


@settings(max_examples=150, deadline=None)
@given(CONDITIONS, st.integers(min_value=1, max_value=60))
def test_a_condition_is_refused_exactly_when_it_has_more_terms_than_the_limit(
    generated: tuple[str, int], limit: int
) -> None:
    text, term_count = generated
    condition, diagnostics = parse_condition(text)
    assert condition is not None, diagnostics
    assert sum(1 for _ in where.terms(condition)) == term_count
    error = where.too_many_terms(condition, limit)
    assert (error is not None) == (term_count > limit)
    if error is not None:
        [diagnostic] = error.extensions["diagnostics"]
        assert diagnostic["code"] == "too-complex"
        assert f"{term_count} terms (at most {limit})" in diagnostic["message"]
        # The located term is the one after the first `limit` terms in reading order.
        column = diagnostic["column"]
        assert text[column - 1 :].startswith(("region", "size", "tags", "vip", "attr"))


@pytest.fixture
async def one_slot(engine: AsyncEngine) -> AsyncIterator[guard.ExpensiveReads]:
    share = guard.share_connections(engine, slots=1, wait=0.2)
    try:
        yield share
    finally:
        guard.forget_share(engine)


async def test_with_the_share_used_up_a_where_read_is_busy_and_cheap_reads_are_served(
    api: Api, world: World, engine: AsyncEngine, one_slot: guard.ExpensiveReads
) -> None:
    customer_id = (await api.data("{ customers(first: 1) { edges { node { id } } } }"))["customers"]["edges"][0][
        "node"
    ]["id"]
    async with session_factory(engine)() as slow_reader:
        # Another request's expensive read, still running.
        await guard.hold_expensive_slot(slow_reader)

        [error] = await api.errors(COUNT, {"w": "region = east"})
        assert error["extensions"]["code"] == "BUSY"
        assert error["extensions"]["retryable"] is True
        assert error["extensions"]["retryAfter"] > 0

        cheap = await api.data(
            "query($id: ID!) { customer(id: $id) { id } customers(first: 2) { totalCount } }", {"id": customer_id}
        )
        assert cheap["customer"]["id"] == customer_id
        assert cheap["customers"]["totalCount"] == len(world.customers)
    # The slow read ended: its slot is free again, and the request's own slot was given back.
    data = await api.data(COUNT, {"w": "region = east"})
    east = await api.data('{ customers(filter: {region: "east"}) { totalCount } }')
    assert data["customers"]["totalCount"] == east["customers"]["totalCount"] > 0
    assert one_slot.in_use == 0


async def test_a_request_gives_its_slot_back_when_it_ends(
    api: Api, world: World, one_slot: guard.ExpensiveReads
) -> None:
    for _ in range(3):
        await api.data(COUNT, {"w": "region = east"})
        assert one_slot.in_use == 0


async def test_with_the_share_used_up_stats_are_busy_too(
    api: Api, world: World, engine: AsyncEngine, one_slot: guard.ExpensiveReads
) -> None:
    async with session_factory(engine)() as slow_reader:
        await guard.hold_expensive_slot(slow_reader)
        [error] = await api.errors("{ stats { customerCount } }")
        assert (error["extensions"]["code"], error["path"]) == ("BUSY", ["stats"])
    data = await api.data("{ stats { customerCount } }")
    assert data["stats"]["customerCount"] == len(world.customers)
    assert one_slot.in_use == 0


def test_a_pool_timeout_in_a_field_is_busy_not_an_internal_error() -> None:
    from graphql import GraphQLError
    from sqlalchemy import exc

    from segmenta.schema.errors import _with_code, is_unexpected

    raised = GraphQLError("QueuePool limit of size 5 overflow 10 reached", original_error=exc.TimeoutError("pool"))
    assert not is_unexpected(raised)
    answered = _with_code(raised)
    assert answered.extensions is not None
    assert (answered.extensions["code"], answered.extensions["retryable"]) == ("BUSY", True)
    assert "QueuePool" not in answered.message
