"""Known documents skip parsing and validation, never the per-request checks; automatic persisted
queries (Apollo's protocol) over POST and GET.  Served over real HTTP: test_documents_live.py."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmenta.schema import documents
from segmenta.schema.documents import BoundedLRU, resolve
from segmenta.schema.limits import MAX_DEPTH, MAX_QUERY_BYTES
from tests.schema.helpers import Api, World
from tests.schema.test_limits import nested_query

STATS = "query Stats { stats { customerCount } }"
CREATE = 'mutation { createCustomer(input: {code: "C-APQ", name: "Persisted"}) { customer { code } userErrors { code } } }'


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def persisted(digest: str, version: Any = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": digest}}


@pytest.fixture(autouse=True)
def empty_stores() -> Iterator[None]:
    documents.documents.clear()
    documents.persisted.clear()
    yield
    documents.documents.clear()
    documents.persisted.clear()


async def post(http: httpx.AsyncClient, token: str | None, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await http.post("/graphql", json=body, headers=headers)
    return response.status_code, response.json()


async def test_a_known_document_is_parsed_and_validated_once(api: Api, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import strawberry.schema.schema as strawberry_schema

    validations: list[object] = []
    original = strawberry_schema.validate_document

    def counting(*args: Any) -> Any:
        validations.append(args[1])
        return original(*args)

    monkeypatch.setattr(strawberry_schema, "validate_document", counting)
    first = await api.data(STATS)
    second = await api.data(STATS)
    assert first == second == {"stats": {"customerCount": 6}}
    assert len(validations) == 1
    assert len(documents.documents) == 1


async def test_a_cached_document_still_meets_the_cost_limit_with_each_requests_variables(api: Api, world: World) -> None:
    level = "customers(first: $n) { nodes { team { %s } } }"
    document = "query Q($n: Int) { " + level % (level % "customers(first: $n) { nodes { code } }") + " }"
    assert "customers" in await api.data(document, {"n": 10})
    assert len(documents.documents) == 1
    [error] = await api.errors(document, {"n": 100})
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["value"] == 2_030_301


async def test_a_cached_document_is_still_refused_to_an_anonymous_caller_and_a_forbidden_role(
    http: httpx.AsyncClient, api: Api, tokens: dict[str, str], world: World
) -> None:
    await api.data(STATS)
    status, body = await post(http, None, {"query": STATS})
    assert status == 401 and body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # A mutation document the admin ran (and so cached) is still refused to a viewer.
    assert (await api.data(CREATE))["createCustomer"]["userErrors"] == []
    [error] = await api.errors(CREATE, token=tokens["viewer"])
    assert error["extensions"]["code"] == "FORBIDDEN"


async def test_an_invalid_document_is_not_stored_and_fails_the_same_way_each_time(api: Api) -> None:
    for _ in range(2):
        [error] = await api.errors("{ noSuchField }")
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    [deep] = await api.errors(nested_query(MAX_DEPTH + 2))
    assert deep["extensions"]["limit"] == "depth"
    assert len(documents.documents) == 0


async def test_a_hash_alone_is_not_found_then_the_text_is_stored_and_the_hash_runs_it(
    http: httpx.AsyncClient, tokens: dict[str, str], world: World
) -> None:
    token, digest = tokens["admin"], sha(STATS)
    status, body = await post(http, token, {"extensions": persisted(digest)})
    assert status == 200
    assert body["errors"] == [
        {"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
    ]
    status, body = await post(http, token, {"query": STATS, "extensions": persisted(digest)})
    assert status == 200 and body["data"] == {"stats": {"customerCount": 6}}
    status, body = await post(http, token, {"extensions": persisted(digest.upper()), "operationName": "Stats"})
    assert status == 200 and body["data"] == {"stats": {"customerCount": 6}}
    # GET, as Apollo Client sends hashed queries with useGETForHashedQueries.
    response = await http.get(
        "/graphql",
        params={"extensions": json.dumps(persisted(digest))},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    assert response.status_code == 200 and response.json()["data"] == {"stats": {"customerCount": 6}}


async def test_a_persisted_query_is_refused_to_an_anonymous_caller_before_its_hash_is_looked_up(
    http: httpx.AsyncClient, api: Api, world: World
) -> None:
    await api.post(STATS)
    for extensions in (persisted(sha(STATS)), persisted("0" * 64)):
        status, body = await post(http, None, {"extensions": extensions})
        assert status == 401
        assert [error["extensions"]["code"] for error in body["errors"]] == ["UNAUTHENTICATED"]


async def test_a_text_that_does_not_match_its_hash_is_refused_and_not_stored(
    http: httpx.AsyncClient, tokens: dict[str, str], world: World
) -> None:
    other = sha("{ stats { customerCount segmentCount } }")
    status, body = await post(http, tokens["admin"], {"query": STATS, "extensions": persisted(other)})
    assert status == 200 and body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "PERSISTED_QUERY_HASH_MISMATCH"}
    status, body = await post(http, tokens["admin"], {"extensions": persisted(other)})
    assert body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_a_persisted_document_still_meets_the_roles_and_limits(
    http: httpx.AsyncClient, tokens: dict[str, str], world: World
) -> None:
    status, body = await post(http, tokens["viewer"], {"query": CREATE, "extensions": persisted(sha(CREATE))})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    deep = nested_query(MAX_DEPTH + 2)
    status, body = await post(http, tokens["admin"], {"query": deep, "extensions": persisted(sha(deep))})
    assert body["errors"][0]["extensions"]["limit"] == "depth"
    # A document over a limit is not remembered (a valid one is, whoever may run it).
    status, body = await post(http, tokens["admin"], {"extensions": persisted(sha(deep))})
    assert body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    huge = "{ stats { customerCount } }\n" + "#" * MAX_QUERY_BYTES
    status, body = await post(http, tokens["admin"], {"query": huge, "extensions": persisted(sha(huge))})
    assert body["errors"][0]["message"].startswith("query too large")
    assert len(documents.persisted) == 1 and documents.persisted.get(sha(CREATE)) == CREATE


@pytest.mark.parametrize(
    "extension, fragment",
    [
        ("not an object", "must be an object"),
        ({"version": 2, "sha256Hash": "0" * 64}, "version 2 is not supported"),
        ({"version": True, "sha256Hash": "0" * 64}, "version True is not supported"),
        ({"sha256Hash": "0" * 64}, "version None is not supported"),
        ({"version": 1, "sha256Hash": "0" * 63}, "64 hexadecimal digits"),
        ({"version": 1, "sha256Hash": "g" * 64}, "64 hexadecimal digits"),
        ({"version": 1, "sha256Hash": "0" * 64 + "\n"}, "64 hexadecimal digits"),
        ({"version": 1, "sha256Hash": "a" * 100_000}, "64 hexadecimal digits"),
        ({"version": 1, "sha256Hash": ["0" * 64]}, "64 hexadecimal digits"),
    ],
)
async def test_a_malformed_persisted_query_extension_is_a_clear_error(
    http: httpx.AsyncClient, tokens: dict[str, str], extension: Any, fragment: str
) -> None:
    status, body = await post(http, tokens["admin"], {"query": STATS, "extensions": {"persistedQuery": extension}})
    assert status == 200 and body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "PERSISTED_QUERY_INVALID"}
    assert fragment in error["message"]
    assert len(error["message"]) < 300


async def test_a_body_without_query_or_persisted_query_is_still_refused(http: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    for body in ({}, {"extensions": {}}, {"query": None, "extensions": {"other": 1}}):
        response = await http.post("/graphql", json=body, headers={"Authorization": f"Bearer {tokens['admin']}"})
        assert response.status_code == 400
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_the_stores_stay_within_their_entries_and_text_budget() -> None:
    store: BoundedLRU[str, str] = BoundedLRU(max_entries=3, max_weight=10)
    for key in "abcd":
        store.put(key, key, 1)
    assert len(store) == 3 and store.get("a") is None
    store.get("b")  # recently used: kept
    store.put("e", "e" * 8, 8)
    assert store.get("b") == "b" and store.get("c") is None and store.weight <= 10
    store.put("huge", "x" * 11, 11)  # heavier than the whole budget: never stored
    assert store.get("huge") is None and store.weight <= 10


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.none(), st.integers(), st.text(max_size=80), st.dictionaries(st.text(max_size=12), st.text(max_size=80))))
def test_any_persisted_query_extension_resolves_or_fails_with_a_persisted_query_code(extension: Any) -> None:
    from graphql import GraphQLError

    try:
        text, _ = resolve(extension, STATS)
    except GraphQLError as error:
        assert (error.extensions or {})["code"].startswith("PERSISTED_QUERY_")
    else:
        assert text == STATS
