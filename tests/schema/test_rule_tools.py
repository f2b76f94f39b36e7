"""`ruleFields` (the field catalogue with the values seen in the data) and `formatRules`."""

from __future__ import annotations

from segmenta.dsl.fields import FIELDS
from tests.schema.helpers import Api, World

FIELDS_QUERY = "{ ruleFields { name kind description unit money derived operators closed values knownValues } }"
FORMAT = """query($source: String!) { formatRules(source: $source) {
  source changed diagnostics { severity code message line column hint } } }"""


async def test_the_catalogue_lists_every_field_with_the_values_seen(api: Api, world: World) -> None:
    fields = {item["name"]: item for item in (await api.data(FIELDS_QUERY))["ruleFields"]}
    assert set(FIELDS) <= set(fields)
    region = fields["region"]
    assert region["kind"] == "TEXT" and region["knownValues"] == ["east", "west"]
    assert region["operators"] == ["=", "!=", "in", "not in", "like", "is missing", "is present"]
    assert fields["industry"]["knownValues"] == ["finance", "retail"]
    assert fields["product_categories"]["knownValues"] == ["cat0", "cat1"]
    # Manual tags only: rule-made tags are outputs, never read by rules.
    assert fields["tags"]["knownValues"] == ["newsletter"]
    size = fields["size"]
    assert (size["kind"], size["closed"], size["values"]) == ("ORDERED", True, ["small", "medium", "large", "enterprise"])
    assert "between" in size["operators"] and "like" not in size["operators"]
    spent = fields["total_spent"]
    assert (spent["unit"], spent["money"], spent["knownValues"]) == ("money", True, [])
    assert fields["days_since_purchase"]["derived"] is True and fields["days_since_purchase"]["unit"] == "days"
    assert fields["name"]["unit"] is None
    # Text attributes appear by key; a number-only attribute (score) has no values to complete.
    assert fields["attr.tier"]["kind"] == "ATTRIBUTE" and fields["attr.tier"]["knownValues"] == ["gold"]
    assert "attr.score" not in fields


async def test_an_agent_gets_the_catalogue_without_the_values_of_other_customers(api: Api, agent_token: str) -> None:
    fields = (await api.data(FIELDS_QUERY, token=agent_token))["ruleFields"]
    assert {item["name"] for item in fields} == set(FIELDS)
    assert all(item["knownValues"] == [] for item in fields)
    assert next(item for item in fields if item["name"] == "lifecycle")["values"][0] == "prospect"


async def test_format_lays_out_a_file_and_says_whether_it_changed(api: Api) -> None:
    messy = "segment  big=size>=large\n\n\n# east\nEAST : big AND region=east->team east_sales,tag vip\n"
    formatted = (await api.data(FORMAT, {"source": messy}))["formatRules"]
    assert formatted == {
        "source": "segment big = size >= large\n\n# east\nEAST: big and region = east -> team east_sales, tag vip\n",
        "changed": True,
        "diagnostics": [],
    }
    again = (await api.data(FORMAT, {"source": formatted["source"]}))["formatRules"]
    assert again["changed"] is False and again["source"] == formatted["source"]


async def test_format_refuses_a_file_with_syntax_errors_with_their_places(api: Api) -> None:
    formatted = (await api.data(FORMAT, {"source": "a: region = -> team x\n"}))["formatRules"]
    assert formatted["source"] is None and formatted["changed"] is False
    (error,) = formatted["diagnostics"]
    assert (error["severity"], error["code"], error["line"], error["column"]) == ("ERROR", "syntax", 1, 13)


async def test_format_refuses_an_oversized_file(api: Api) -> None:
    errors = await api.errors(FORMAT, {"source": "x" * 200_001})
    assert "too long" in errors[0]["message"]
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
