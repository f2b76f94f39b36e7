"""A document is authorised as a whole before any field runs: one refused root field refuses everything.

Before this check, `mutation { a: recordPurchase(...) b: createCustomer(...) }` from an agent recorded the
purchase and answered `data: null` with FORBIDDEN, so a retrying client recorded it twice.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from graphql import parse
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.schema.permissions import _root_fields
from segmenta.storage import models
from segmenta.storage.engine import session_factory
from tests.schema.helpers import Api, World, global_id, snapshot

PURCHASE = "recordPurchase(input: {customerId: $customer, amount: 12.5}) { purchase { amount } userErrors { code } }"
CREATE = 'createCustomer(input: {code: "N1", name: "New"}) { customer { code } userErrors { code } }'

HALF_WRITING_DOCUMENTS = {
    "aliases": f"mutation($customer: ID!) {{ a: {PURCHASE} b: {CREATE} }}",
    "refused field first": f"mutation($customer: ID!) {{ b: {CREATE} a: {PURCHASE} }}",
    "named fragment": f"mutation($customer: ID!) {{ a: {PURCHASE} ...More }} fragment More on Mutation {{ b: {CREATE} }}",
    "nested fragments": (
        f"mutation($customer: ID!) {{ ...Outer }} fragment Outer on Mutation {{ a: {PURCHASE} ...Inner }} "
        f"fragment Inner on Mutation {{ ... {{ {CREATE} }} }}"
    ),
    "inline fragment": f"mutation($customer: ID!) {{ {PURCHASE} ... on Mutation {{ {CREATE} }} }}",
    "skipped field": f"mutation($customer: ID!) {{ {PURCHASE} {CREATE.replace(') {', ') @skip(if: true) {', 1)} }}",
}


@pytest.fixture
async def own_customer(engine: AsyncEngine, world: World, agent_token: str) -> str:
    """The agent manages C000: recording a purchase for it is allowed on its own."""
    async with session_factory(engine)() as session:
        agent = await session.scalar(select(models.Employee.id).where(models.Employee.email == "agent@example.com"))
        customer = await session.get(models.Customer, world.customers["C000"])
        assert customer is not None
        customer.manager_id = agent
        await session.commit()
    return global_id("Customer", world.customers["C000"])


async def purchase_count(engine: AsyncEngine) -> int:
    async with session_factory(engine)() as session:
        return int(await session.scalar(select(func.count()).select_from(models.Purchase)) or 0)


@pytest.mark.parametrize("document", HALF_WRITING_DOCUMENTS.values(), ids=HALF_WRITING_DOCUMENTS.keys())
async def test_a_refused_field_refuses_the_whole_document_and_nothing_is_written(
    api: Api, engine: AsyncEngine, agent_token: str, own_customer: str, document: str
) -> None:
    before = await snapshot(engine)
    purchases = await purchase_count(engine)
    response = await api.post(document, {"customer": own_customer}, token=agent_token)
    # First what matters most: the allowed write did not happen behind the refusal.
    assert await purchase_count(engine) == purchases
    assert await snapshot(engine) == before
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["fields"] == ["createCustomer"]
    assert "createCustomer" in error["message"] and "admin, manager" in error["message"]
    assert "recordPurchase" not in error["message"]


async def test_the_same_write_alone_is_allowed(
    api: Api, engine: AsyncEngine, agent_token: str, own_customer: str
) -> None:
    purchases = await purchase_count(engine)
    data = await api.data(f"mutation($customer: ID!) {{ a: {PURCHASE} }}", {"customer": own_customer}, token=agent_token)
    assert data["a"] == {"purchase": {"amount": "12.50"}, "userErrors": []}
    assert await purchase_count(engine) == purchases + 1


async def test_every_refused_field_is_named(api: Api, tokens: dict[str, str], world: World) -> None:
    document = (
        'mutation { x: createCustomer(input: {code: "N1", name: "New"}) { customer { code } } '
        'y: createSegment(input: {key: "k", name: "K"}) { segment { key } } }'
    )
    [error] = await api.errors(document, token=tokens["viewer"])
    assert error["extensions"] == {
        "code": "FORBIDDEN",
        "fields": ["createCustomer", "createSegment"],
        "refused": [
            {"responseKey": "x", "field": "createCustomer", "roles": ["admin", "manager"],
             "reason": "changing customers needs one of the roles admin, manager"},
            {"responseKey": "y", "field": "createSegment", "roles": ["admin", "manager"],
             "reason": "changing segments needs one of the roles admin, manager"},
        ],
    }
    assert "x: createCustomer (changing customers" in error["message"]
    assert "y: createSegment (changing segments" in error["message"]


async def test_the_same_field_refused_under_two_aliases_is_reported_at_both(
    api: Api, engine: AsyncEngine, tokens: dict[str, str], world: World
) -> None:
    before = await snapshot(engine)
    document = (
        'mutation { a: createCustomer(input: {code: "N1", name: "One"}) { customer { code } } '
        'b: createCustomer(input: {code: "N2", name: "Two"}) { customer { code } } }'
    )
    [error] = await api.errors(document, token=tokens["viewer"])
    assert error["extensions"]["fields"] == ["createCustomer"]
    assert [item["responseKey"] for item in error["extensions"]["refused"]] == ["a", "b"]
    assert "a: createCustomer (" in error["message"] and "b: createCustomer (" in error["message"]
    assert await snapshot(engine) == before


async def test_a_forbidden_query_field_refuses_the_readable_ones_too(api: Api, tokens: dict[str, str]) -> None:
    response = await api.post("{ customers(first: 1) { totalCount } apiTokens { id } }", token=tokens["manager"])
    body = response.json()
    assert body["data"] is None
    assert [error["extensions"]["fields"] for error in body["errors"]] == [["apiTokens"]]


# -- the walk itself, over generated documents ------------------------------------------------

_FRAGMENT_NUMBERS = itertools.count()
FIELD_NAMES = ("recordPurchase", "createCustomer", "deleteCustomer", "createSegment", "__typename")


@st.composite
def selections(draw: Any, depth: int = 0) -> tuple[str, list[str], list[tuple[str, str]]]:
    """(selection text, fragment definitions, expected (response key, field name) in order)."""
    parts: list[str] = []
    fragments: list[str] = []
    expected: list[tuple[str, str]] = []
    for _ in range(draw(st.integers(1, 3))):
        wrapper = draw(st.sampled_from(["field", "field", "inline", "fragment"] if depth < 3 else ["field"]))
        if wrapper == "field":
            name = draw(st.sampled_from(FIELD_NAMES))
            alias = draw(st.one_of(st.none(), st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)))
            body = "" if name == "__typename" else " { __typename }"
            parts.append(f"{alias + ': ' if alias else ''}{name}{body}")
            expected.append((alias or name, name))
        else:
            inner, inner_fragments, inner_expected = draw(selections(depth + 1))
            fragments.extend(inner_fragments)
            expected.extend(inner_expected)
            if wrapper == "inline":
                parts.append(f"... on Mutation {{ {inner} }}")
            else:
                name = f"F{next(_FRAGMENT_NUMBERS)}"
                fragments.append(f"fragment {name} on Mutation {{ {inner} }}")
                parts.append(f"...{name}")
    return " ".join(parts), fragments, expected


@settings(max_examples=200, deadline=None)
@given(selections())
def test_the_walk_finds_every_root_field_through_fragments_and_aliases(
    generated: tuple[str, list[str], list[tuple[str, str]]],
) -> None:
    text, fragments, expected = generated
    document = parse(" ".join([f"mutation {{ {text} }}", *fragments]))
    operation = document.definitions[0]
    assert _root_fields(document, operation) == expected  # type: ignore[arg-type]
