"""A `where` condition that is valid but has warnings runs, and says so in the response's
`extensions.warnings` (docs/graphql.md, "Filtering with a condition")."""

from __future__ import annotations

from tests.schema.helpers import Api, World

QUERY = """query ($where: String!) {
  customers(where: $where, first: 100) { totalCount }
  vip: customers(where: "size = large", first: 1) { totalCount }
}"""


async def test_a_misspelled_value_runs_and_is_reported_in_extensions(api: Api, world: World) -> None:
    response = await api.post(QUERY, {"where": "size = hugee"})
    body = response.json()
    assert "errors" not in body, body
    assert body["data"]["customers"]["totalCount"] == 0
    assert body["extensions"]["warnings"] == [
        {
            "path": ["customers"],
            "argument": "where",
            "severity": "warning",
            "code": "unknown-value",
            "message": "`size` has no value `hugee`",
            "line": 1,
            "column": 8,
            "end_line": 1,
            "end_column": 13,
            "hint": "its values are small < medium < large < enterprise",
        }
    ]


async def test_each_aliased_field_names_its_own_path(api: Api, world: World) -> None:
    query = """{ a: customers(where: "size = hugee") { totalCount } b: customers(where: "lifecycle = gone") { totalCount } }"""
    body = (await api.post(query)).json()
    assert [(item["path"], item["code"]) for item in body["extensions"]["warnings"]] == [
        (["a"], "unknown-value"),
        (["b"], "unknown-value"),
    ]


async def test_a_clean_condition_has_no_warnings_key(api: Api, world: World) -> None:
    body = (await api.post(QUERY, {"where": "size = small"})).json()
    assert body["data"]["customers"]["totalCount"] == 2
    assert "warnings" not in (body.get("extensions") or {})
