"""Request limits: depth, size, aliases, tokens, cost; the settings that change them.

The served process (body limits, time limit, disconnects) is tested in test_request_limits_live.py."""

from __future__ import annotations

import pytest
from graphql import get_introspection_query

from segmenta.domain.errors import UserError
from segmenta.schema.limits import (
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_DUPLICATE_FIELDS,
    MAX_QUERY_BYTES,
    MAX_QUERY_COST,
    RequestLimits,
)
from tests.schema.helpers import Api, World

LEAVES = {"customers(first: 1)": "totalCount", "edges": "cursor", "node": "code", "team": "key"}


def nested_query(depth: int) -> str:
    """customers > edges > node > team > customers > ... nested `depth` levels deep, ending in a leaf."""
    chain = list(LEAVES)
    levels = [chain[index % len(chain)] for index in range(depth)]
    return "{ " + " { ".join(levels) + f" {{ {LEAVES[levels[-1]]} }}" + " }" * len(levels)


async def test_queries_up_to_the_depth_limit_run(api: Api, world: World) -> None:
    data = await api.data(nested_query(MAX_DEPTH - 1))
    assert "customers" in data


async def test_queries_deeper_than_the_limit_are_refused(api: Api, world: World) -> None:
    [error] = await api.errors(nested_query(MAX_DEPTH + 2))
    assert f"query depth {MAX_DEPTH + 2} exceeds maximum operation depth of {MAX_DEPTH}" in error["message"]
    assert error["extensions"] == {
        "code": "QUERY_TOO_COMPLEX", "limit": "depth", "value": MAX_DEPTH + 2, "maximum": MAX_DEPTH
    }


async def test_introspection_is_not_limited_by_depth(api: Api) -> None:
    query = "{ __schema { types { name fields { type { ofType { ofType { ofType { ofType { name } } } } } } } } }"
    data = await api.data(query)
    assert any(type_["name"] == "Customer" for type_ in data["__schema"]["types"])


async def test_too_many_aliases_are_refused(api: Api, world: World) -> None:
    aliases = " ".join(f"a{index}: stats {{ customerCount }}" for index in range(MAX_ALIASES + 1))
    [error] = await api.errors(f"{{ {aliases} }}")
    assert f"{MAX_ALIASES + 1} aliases exceed the maximum of {MAX_ALIASES}" in error["message"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_an_oversized_query_is_refused_before_parsing(api: Api) -> None:
    padding = "#" * (MAX_QUERY_BYTES + 1)
    [error] = await api.errors(f"{{ stats {{ customerCount }} }}\n{padding}")
    assert error["message"].startswith("query too large")
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_an_over_cost_operation_is_refused_before_it_runs(api: Api, world: World) -> None:
    nested = "{ customers(first: 100) { nodes { team { customers(first: 100) { nodes { team { customers(first: 100) { nodes { code } } } } } } } } }"
    [error] = await api.errors(nested)
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["limit"] == "cost"
    assert error["extensions"]["value"] > MAX_QUERY_COST
    assert f"exceeds the maximum of {MAX_QUERY_COST}" in error["message"]


async def test_first_as_a_variable_counts_at_its_value(api: Api, world: World) -> None:
    level = "customers(first: $n) { nodes { team { %s } } }"
    document = "query Q($n: Int) { " + level % (level % "customers(first: $n) { nodes { code } }") + " }"
    assert "customers" in await api.data(document, {"n": 10})  # cost 2,331
    [error] = await api.errors(document, {"n": 100})  # cost 2,030,301
    assert error["extensions"]["limit"] == "cost"
    assert error["extensions"]["value"] == 2_030_301


async def test_a_known_document_is_measured_again_when_a_variable_counts(api: Api, world: World) -> None:
    """A document's measure is kept per process only when no variable counts (schema/limits.py): a page
    size given in a fragment's variable is read at each request's value; a fixed one is refused every time."""
    level = "customers(first: $n) { nodes { team { %s } } }"
    document = "query Q($n: Int) { ...F } fragment F on Query { " + level % (level % "customers(first: $n) { nodes { code } }") + " }"
    assert "customers" in await api.data(document, {"n": 10})
    [error] = await api.errors(document, {"n": 100})
    assert error["extensions"]["value"] == 2_030_301
    fixed = document.replace("query Q($n: Int)", "query Q").replace("$n", "100")
    for _ in range(2):
        [error] = await api.errors(fixed)
        assert error["extensions"]["limit"] == "cost"


async def test_a_field_selected_too_often_is_refused_before_validation(api: Api, world: World) -> None:
    fragments = "\n".join(f"fragment F{index} on Query {{ stats {{ customerCount }} }}" for index in range(200))
    document = fragments + "\n{ " + " ".join(f"...F{index}" for index in range(200)) + " }"
    [error] = await api.errors(document)
    assert error["extensions"] == {
        "code": "QUERY_TOO_COMPLEX", "limit": "duplicates", "value": 199, "maximum": MAX_DUPLICATE_FIELDS
    }
    assert "selects 199 fields again under a response name it already has" in error["message"]


async def test_graphiql_introspection_passes(api: Api) -> None:
    data = await api.data(get_introspection_query(descriptions=True, input_value_deprecation=True))
    assert data["__schema"]["queryType"]["name"] == "Query"


async def test_a_fragment_cycle_is_refused_by_validation(api: Api) -> None:
    errors = await api.errors("fragment A on Query { ...B } fragment B on Query { ...A } { ...A }")
    assert any("Cannot spread fragment" in error["message"] for error in errors)


def test_limits_come_from_their_settings() -> None:
    limits = RequestLimits.from_environment({"SEGMENTA_MAX_QUERY_COST": "1234", "SEGMENTA_REQUEST_TIMEOUT": "2.5"})
    assert limits.max_query_cost == 1234
    assert limits.request_timeout == 2.5
    assert RequestLimits.from_environment({}) == RequestLimits()


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("SEGMENTA_MAX_QUERY_COST", "lots"),
        ("SEGMENTA_MAX_QUERY_COST", "0"),
        ("SEGMENTA_MAX_BODY_BYTES", "12"),
        ("SEGMENTA_MAX_ALIASES", "-1"),
        ("SEGMENTA_REQUEST_TIMEOUT", "0"),
        ("SEGMENTA_REQUEST_TIMEOUT", "inf"),
        ("SEGMENTA_REQUEST_TIMEOUT", "nan"),
    ],
)
def test_a_bad_setting_is_a_clear_error(setting: str, value: str) -> None:
    with pytest.raises(UserError) as raised:
        RequestLimits.from_environment({setting: value})
    assert raised.value.field == setting
    assert setting in raised.value.message and repr(value) in raised.value.message
