"""The admin-only token API: `apiTokens`, `createApiToken` (the secret once), `revokeApiToken`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain.access.tokens import hash_token
from tests.schema.helpers import Api, World, global_id, snapshot

CREATE = """
mutation($input: ApiTokenInput!) { createApiToken(input: $input) {
  secret apiToken { id role label expiresAt revokedAt active employeeEmail employee { email } }
  userErrors { field message code } } }
"""
REVOKE = """
mutation($id: ID!) { revokeApiToken(id: $id) {
  apiToken { id revokedAt active } userErrors { field message code } } }
"""
LIST = "{ apiTokens { id role label createdAt expiresAt revokedAt active employeeEmail } }"


async def test_create_use_list_and_revoke(api: Api, http: object, world: World) -> None:
    created = (await api.data(CREATE, {"input": {"role": "VIEWER", "label": "report", "expiresIn": "30d"}}))[
        "createApiToken"
    ]
    assert created["userErrors"] == []
    secret = created["secret"]
    token = created["apiToken"]
    assert secret.startswith("sgm_")
    assert (token["role"], token["label"], token["revokedAt"], token["active"]) == ("VIEWER", "report", None, True)
    expires = datetime.fromisoformat(token["expiresAt"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=5)

    # The new token works, and may read but not manage tokens.
    assert (await api.data("{ stats { teamCount } }", token=secret))["stats"]["teamCount"] == len(world.teams)
    refused = await api.errors(LIST, token=secret)
    assert [error["extensions"]["code"] for error in refused] == ["FORBIDDEN"]

    listed = (await api.data(LIST))["apiTokens"]
    assert token["id"] in [item["id"] for item in listed]
    listing = str(listed)
    assert secret not in listing and hash_token(secret) not in listing

    revoked = (await api.data(REVOKE, {"id": token["id"]}))["revokeApiToken"]
    assert revoked["userErrors"] == [] and revoked["apiToken"]["active"] is False
    assert revoked["apiToken"]["revokedAt"] is not None
    response = await api.post("{ stats { teamCount } }", token=secret)
    assert response.status_code == 401
    assert "revoked or expired" in response.json()["errors"][0]["message"]


async def test_an_agent_token_is_bound_to_an_employee(api: Api, world: World) -> None:
    payload = (await api.data(CREATE, {"input": {"role": "AGENT", "employeeEmail": "ann@example.com"}}))[
        "createApiToken"
    ]
    assert payload["userErrors"] == []
    assert payload["apiToken"]["employee"] == {"email": "ann@example.com"}
    assert payload["apiToken"]["employeeEmail"] == "ann@example.com"


@pytest.mark.parametrize(
    ("extra", "field", "code"),
    [
        ({"role": "AGENT"}, "input.employeeEmail", "REQUIRED"),
        ({"employeeEmail": "ghost@example.com"}, "input.employeeEmail", "NOT_FOUND"),
        ({"expiresIn": "soon"}, "input.expiresIn", "INVALID"),
        ({"expiresIn": "0h"}, "input.expiresIn", "INVALID"),
        ({"expiresAt": "2001-01-01T00:00:00Z"}, "input.expiresAt", "INVALID"),
        ({"expiresAt": "2030-01-01T00:00:00Z", "expiresIn": "1d"}, "input.expiresIn", "INVALID"),
    ],
)
async def test_bad_input_is_a_located_user_error_and_writes_nothing(
    api: Api, engine: AsyncEngine, world: World, extra: dict[str, str], field: str, code: str
) -> None:
    before = await snapshot(engine)
    payload = (await api.data(CREATE, {"input": {"role": "VIEWER", **extra}}))["createApiToken"]
    assert payload["secret"] is None and payload["apiToken"] is None
    [error] = payload["userErrors"]
    assert (error["field"], error["code"]) == (field, code), error
    assert await snapshot(engine) == before


async def test_revoking_twice_an_unknown_or_a_malformed_id(api: Api, engine: AsyncEngine, world: World) -> None:
    token_id = (await api.data(CREATE, {"input": {"role": "VIEWER"}}))["createApiToken"]["apiToken"]["id"]
    assert (await api.data(REVOKE, {"id": token_id}))["revokeApiToken"]["userErrors"] == []
    before = await snapshot(engine)
    for bad, code in (
        (token_id, "ALREADY_REVOKED"),
        (global_id("ApiToken", 999999), "NOT_FOUND"),
        (global_id("ApiToken", 2**40), "INVALID_ID"),  # beyond every 32-bit key: not an ID at all
        (global_id("Customer", 1), "INVALID_ID"),
        ("nonsense", "INVALID_ID"),
    ):
        payload = (await api.data(REVOKE, {"id": bad}))["revokeApiToken"]
        assert payload["apiToken"] is None
        assert [(error["field"], error["code"]) for error in payload["userErrors"]] == [("id", code)], bad
    assert await snapshot(engine) == before


@pytest.mark.parametrize("role", ["manager", "viewer", "agent"])
async def test_only_admins_manage_tokens(
    api: Api, tokens: dict[str, str], agent_token: str, engine: AsyncEngine, world: World, role: str
) -> None:
    caller = agent_token if role == "agent" else tokens[role]
    admin_token_id = (await api.data(LIST))["apiTokens"][0]["id"]
    before = await snapshot(engine)
    for document, variables in (
        (LIST, {}),
        (CREATE, {"input": {"role": "ADMIN"}}),
        (REVOKE, {"id": admin_token_id}),
    ):
        response = await api.post(document, variables, token=caller)
        body = response.json()
        assert body["data"] is None
        assert [error["extensions"]["code"] for error in body["errors"]] == ["FORBIDDEN"]
    assert await snapshot(engine) == before


async def test_no_field_can_show_a_secret_or_hash(api: Api) -> None:
    fields = (await api.data('{ __type(name: "ApiToken") { fields { name } } }'))["__type"]["fields"]
    names = {field["name"] for field in fields}
    assert names == {
        "id", "role", "label", "createdAt", "expiresAt", "revokedAt", "employeeEmail", "active", "employee", "lastUsedAt"
    }
