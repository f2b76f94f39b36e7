"""Request limits: depth, size, aliases, tokens."""

from __future__ import annotations

from schema.limits import MAX_ALIASES, MAX_DEPTH, MAX_QUERY_BYTES
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
    errors = await api.errors(nested_query(MAX_DEPTH + 2))
    assert any("exceeds maximum operation depth" in error["message"] for error in errors)


async def test_introspection_is_not_limited_by_depth(api: Api) -> None:
    query = "{ __schema { types { name fields { type { ofType { ofType { ofType { ofType { name } } } } } } } } }"
    data = await api.data(query)
    assert any(type_["name"] == "Customer" for type_ in data["__schema"]["types"])


async def test_too_many_aliases_are_refused(api: Api, world: World) -> None:
    aliases = " ".join(f"a{index}: stats {{ customerCount }}" for index in range(MAX_ALIASES + 1))
    errors = await api.errors(f"{{ {aliases} }}")
    assert any("aliases" in error["message"] for error in errors)


async def test_an_oversized_query_is_refused_before_parsing(api: Api) -> None:
    padding = "#" * (MAX_QUERY_BYTES + 1)
    [error] = await api.errors(f"{{ stats {{ customerCount }} }}\n{padding}")
    assert error["message"].startswith("query too large")
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
