"""The request path of a real `segmenta serve` process: automatic persisted queries over HTTP POST
and GET (schema/documents.py); the per-process token cache against a revocation by another process
(domain/access/tokens.py, SEGMENTA_TOKEN_CACHE)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live_server import LiveServer, segmenta

STATS = "query Stats { stats { customerCount } }"
CACHE_SECONDS = 1.0
CREATE_TOKEN = """mutation { createApiToken(input: {role: VIEWER, label: "cached"}) { secret apiToken { id } } }"""
REVOKE = "mutation($id: ID!) { revokeApiToken(id: $id) { userErrors { code } } }"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer.start(
        tmp_path_factory.mktemp("request-path-live"), customers=12, env={"SEGMENTA_TOKEN_CACHE": str(CACHE_SECONDS)}
    )
    yield server
    server.stop()


def persisted(text: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(text.encode("utf-8")).hexdigest()}}


def get(live: LiveServer, params: dict[str, str], token: str | None) -> tuple[int, Any]:
    request = urllib.request.Request(f"{live.url}/graphql?{urllib.parse.urlencode(params)}")
    request.add_header("Accept", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_apollo_persisted_query_round_trip_over_post(live: LiveServer) -> None:
    token = live.tokens["admin"]
    extensions = persisted(STATS)
    status, body = live.post({"extensions": extensions, "operationName": "Stats"}, token=token)
    assert status == 200 and body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert body["errors"][0]["message"] == "PersistedQueryNotFound"
    status, body = live.post({"query": STATS, "extensions": extensions, "operationName": "Stats"}, token=token)
    assert status == 200 and body["data"] == {"stats": {"customerCount": 12}}
    status, body = live.post({"extensions": extensions, "operationName": "Stats"}, token=token)
    assert status == 200 and body == {"data": {"stats": {"customerCount": 12}}}
    status, body = live.post({"extensions": extensions}, token=None)
    assert status == 401 and body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_apollo_persisted_query_over_get(live: LiveServer, tmp_path: Path) -> None:
    token = live.tokens["viewer"]
    text = "query Count { stats { customerCount } }"
    params = {"extensions": json.dumps(persisted(text)), "operationName": "Count"}
    status, body = get(live, params, token)
    assert status == 200 and body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    status, body = get(live, {**params, "query": text}, token)
    assert status == 200 and body["data"] == {"stats": {"customerCount": 12}}
    status, body = get(live, params, token)
    assert status == 200 and body["data"] == {"stats": {"customerCount": 12}}
    status, body = get(live, {"extensions": json.dumps({"persistedQuery": {"version": 1, "sha256Hash": "zz"}})}, token)
    assert status == 200 and body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_INVALID"


def test_a_mismatched_hash_over_post_runs_nothing(live: LiveServer) -> None:
    mutation = 'mutation { createCustomer(input: {code: "APQ-1", name: "Never"}) { customer { code } } }'
    status, body = live.post(
        {"query": mutation, "extensions": persisted("{ stats { customerCount } }")}, token=live.tokens["admin"]
    )
    assert status == 200 and body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    status, body = live.query('{ customerByCode(code: "APQ-1") { code } }')
    assert body == {"data": {"customerByCode": None}}


def new_token(live: LiveServer) -> tuple[str, str]:
    status, body = live.query(CREATE_TOKEN)
    assert status == 200, body
    created = body["data"]["createApiToken"]
    return created["secret"], created["apiToken"]["id"]


def test_a_token_revoked_by_another_process_stops_within_the_cache_time(live: LiveServer) -> None:
    secret, token_id = new_token(live)
    assert live.post({"query": STATS}, token=secret)[0] == 200  # now cached by the server
    key = base64.b64decode(token_id).decode().partition(":")[2]
    segmenta("token", "revoke", key, "--database-url", live.database_url)
    revoked_at = time.monotonic()
    while live.post({"query": STATS}, token=secret)[0] == 200:
        assert time.monotonic() - revoked_at < CACHE_SECONDS + 5, "the revoked token still works"
        time.sleep(0.05)
    # Refused from then on, never answered from the cache again.
    for _ in range(3):
        status, body = live.post({"query": STATS}, token=secret)
        assert status == 401 and body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_a_token_revoked_through_the_same_process_stops_at_once(live: LiveServer) -> None:
    secret, token_id = new_token(live)
    assert live.post({"query": STATS}, token=secret)[0] == 200
    status, body = live.query(REVOKE, {"id": token_id})
    assert body["data"]["revokeApiToken"]["userErrors"] == []
    assert live.post({"query": STATS}, token=secret)[0] == 401
