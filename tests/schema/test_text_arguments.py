"""Query arguments holding text no column can store (NUL, unpaired surrogates) are bad input,
refused before anything reads, on both back ends; mutations report the same as userErrors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmenta.domain.validation import is_storable
from tests.schema.helpers import Api, World

# Every query here reads text columns with the argument on PostgreSQL when it is let through.
QUERIES_WITH_LITERALS = [
    '{ rulesets(name: "a\\u0000") { id } }',
    '{ customerByCode(code: "c\\u0000") { id } }',
    '{ customers(first: 1, where: "name = \\"\\u0000\\"") { totalCount } }',
]


def _codes(errors: list[dict[str, Any]]) -> list[str]:
    return [error["extensions"]["code"] for error in errors]


@pytest.mark.parametrize("query", QUERIES_WITH_LITERALS)
async def test_a_literal_argument_with_unstorable_text_is_bad_input(api: Api, world: World, query: str) -> None:
    response = await api.post(query)
    body = response.json()
    assert body.get("data") is None
    assert _codes(body["errors"]) == ["BAD_USER_INPUT"]
    assert "NUL character or an unpaired surrogate" in body["errors"][0]["message"]


async def test_a_variable_with_unstorable_text_is_bad_input_even_nested(api: Api, world: World) -> None:
    response = await api.post(
        "query($name: String, $filter: CustomerFilter) { rulesets(name: $name) { id } customers(first: 1, filter: $filter) { totalCount } }",
        {"name": "fine", "filter": {"search": "x\x00y"}},
    )
    assert _codes(response.json()["errors"]) == ["BAD_USER_INPUT"]
    # A lone surrogate can only arrive in a variable (the GraphQL parser refuses it in a literal).
    body = json.dumps({"query": "query($name: String) { rulesets(name: $name) { id } }", "variables": {"name": "\ud800"}})
    response = await api.client.post(
        "/graphql", content=body, headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"}
    )
    assert _codes(response.json()["errors"]) == ["BAD_USER_INPUT"]


async def test_plain_text_arguments_still_work(api: Api, world: World) -> None:
    data = await api.data('{ rulesets(name: "nothing like it") { id } customerByCode(code: "none") { id } }')
    assert data == {"rulesets": [], "customerByCode": None}


async def test_a_mutation_reports_unstorable_text_as_a_user_error(api: Api, world: World) -> None:
    data = await api.data(
        'mutation { createCustomer(input: {code: "n1", name: "a\\u0000b"}) { customer { id } userErrors { field code } } }'
    )
    assert data["createCustomer"]["customer"] is None
    assert data["createCustomer"]["userErrors"][0]["field"] == "input.name"


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(text=st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0xE000), max_size=8))
def test_storable_means_no_nul_and_no_lone_surrogate(text: str) -> None:
    assert is_storable(text) == (not any(char == "\x00" or 0xD800 <= ord(char) <= 0xDFFF for char in text))
    if is_storable(text):
        text.encode("utf-8")  # storable text always encodes


def _found_by_the_walk(query: str, variables: dict[str, Any]) -> bool:
    from graphql import parse, visit

    from segmenta.schema.text_arguments import _FirstBadArgument

    finder = _FirstBadArgument(variables)
    visit(parse(query), finder)
    return finder.found is not None


_ARGUMENT_TEXT = st.lists(
    st.sampled_from(["a", " ", "\\u0000", "\\u{0}", "\\uD800", "\\n", "\\\\", "\\u0041", "é", "\x00"]), max_size=6
).map("".join)


@settings(max_examples=300, deadline=None)
@given(literal=_ARGUMENT_TEXT, variable=st.text(max_size=4), block=st.booleans())
def test_the_quick_check_never_lets_through_what_the_walk_refuses(literal: str, variable: str, block: bool) -> None:
    """The check that skips the walk (no `\\u` escape, no unstorable character, no bad variable) says
    "maybe" for every document the walk refuses: it is a shortcut, never a second opinion."""
    from graphql import GraphQLSyntaxError

    from segmenta.schema.text_arguments import may_hold_unstorable_text

    value = f'"""{literal}"""' if block else f'"{literal}"'
    query = f"query($v: String) {{ a(x: {value}) b(y: $v) }}"
    variables = {"v": variable}
    try:
        refused = _found_by_the_walk(query, variables)
    except GraphQLSyntaxError:
        return  # refused by the parser before the check runs
    if refused:
        assert may_hold_unstorable_text(query, variables)
