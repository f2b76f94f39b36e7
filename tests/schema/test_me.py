"""`me`: the caller's role and what it may do, the same answers the permission checks give."""

from __future__ import annotations

from tests.schema.helpers import Api

ME = """{ me { role mayPreviewRules mayManageRules mayWriteCustomers mayRecordActivity mayHandleFeedback
  mayWriteSegments mayAssign mayManageStaff mayManageTokens employee { email } } }"""
SAVE = 'mutation { saveRuleset(name: "me-test", source: "otherwise -> team x") { userErrors { code } } }'


async def test_each_role_sees_its_own_limits(api: Api, tokens: dict[str, str], agent_token: str) -> None:
    admin = (await api.data(ME))["me"]
    assert admin["role"] == "ADMIN" and admin["employee"] is None
    assert all(value for key, value in admin.items() if key.startswith("may"))

    manager = (await api.data(ME, token=tokens["manager"]))["me"]
    assert manager["role"] == "MANAGER"
    assert manager["mayPreviewRules"] and manager["mayWriteCustomers"] and manager["mayAssign"]
    assert not manager["mayManageRules"] and not manager["mayManageStaff"] and not manager["mayManageTokens"]

    viewer = (await api.data(ME, token=tokens["viewer"]))["me"]
    assert viewer["role"] == "VIEWER"
    assert not any(value for key, value in viewer.items() if key.startswith("may"))

    agent = (await api.data(ME, token=agent_token))["me"]
    assert agent["role"] == "AGENT" and agent["employee"] == {"email": "agent@example.com"}
    assert agent["mayRecordActivity"] and not agent["mayPreviewRules"] and not agent["mayWriteCustomers"]


async def test_what_me_says_is_what_the_api_enforces(api: Api, tokens: dict[str, str]) -> None:
    for role in ("manager", "viewer"):
        me = (await api.data(ME, token=tokens[role]))["me"]
        assert me["mayManageRules"] is False
        refused = await api.errors(SAVE, token=tokens[role])
        assert [error["extensions"]["code"] for error in refused] == ["FORBIDDEN"]
    assert (await api.data(SAVE))["saveRuleset"]["userErrors"] == []


async def test_without_a_token_me_is_refused(api: Api) -> None:
    response = await api.client.post("/graphql", json={"query": "{ me { role } }"})
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
