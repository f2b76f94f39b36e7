"""A page of customers selects only the columns its nodes read (schema/customer_columns.py): every field of
Customer and of its metrics, read alone through a page (so with only its own columns), equals the same
field read from the whole row."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.schema.customer_columns import CUSTOMER_FIELDS, METRIC_FIELDS
from segmenta.storage import models
from segmenta.storage.engine import session_factory
from tests.schema.helpers import Api, World

FIELDS = """query ($name: String!) {
  __type(name: $name) { fields { name args { name } type { kind ofType { kind ofType { kind ofType { kind } } } } } }
}"""
LEAVES = ("SCALAR", "ENUM")


async def _selections(api: Api, type_name: str) -> list[str]:
    """Each field of the type as a selection: a leaf as it is, an object with its __typename."""
    fields = (await api.data(FIELDS, {"name": type_name}))["__type"]["fields"]
    selections = []
    for field in fields:
        kind = field["type"]
        while kind["kind"] in ("NON_NULL", "LIST"):
            kind = kind["ofType"]
        selections.append(field["name"] if kind["kind"] in LEAVES else f"{field['name']} {{ __typename }}")
    return selections


async def test_every_field_read_alone_through_a_page_equals_the_whole_rows(
    api: Api, engine: AsyncEngine, world: World
) -> None:
    async with session_factory(engine)() as session:
        customer = await session.get(models.Customer, world.customers["C003"])
        assert customer is not None
        customer.birthday, customer.email, customer.city, customer.age = date(1990, 3, 1), "c@example.com", "Oslo", 33.0
        customer.first_purchase_at, customer.last_purchase_at = datetime(2024, 1, 2), datetime(2025, 2, 3, 4, 5, 6)
        customer.last_contact_at, customer.total_spent = datetime(2025, 1, 1), Decimal("10.05")
        customer.survey_sum, customer.survey_count, customer.nps_sum, customer.nps_count = 9.0, 2, 20.0, 2
        customer.complaint_count, customer.open_complaints, customer.feedback_count = 2, 1, 4
        customer.deciding_rule, customer.assignment_locked = "rule one", True
        await session.commit()
    selections = await _selections(api, "Customer")
    metrics = await _selections(api, "CustomerMetrics")
    # The lists of schema/customer_columns.py name real fields (a renamed field would leave a stale entry).
    names = {selection.split()[0] for selection in selections}
    assert set(CUSTOMER_FIELDS) - {"__typename"} <= names and "metrics" in names
    assert set(METRIC_FIELDS) - {"__typename"} == {selection.split()[0] for selection in metrics}
    alone = [selection for selection in selections if not selection.startswith("metrics")]
    alone += [f"metrics {{ {metric} }}" for metric in metrics]
    everything = f"id {' '.join(alone[: len(alone) - len(metrics)])} metrics {{ {' '.join(metrics)} }}"
    whole = await api.data(f"{{ customers(first: 100, orderBy: CODE_ASC) {{ nodes {{ {everything} }} }} }}")
    # The reference: node(id) reads rows by key, of every column.
    ids = [node["id"] for node in whole["customers"]["nodes"]]
    reference = await api.data(
        f"query ($ids: [ID!]!) {{ nodes(ids: $ids) {{ ... on Customer {{ {everything} }} }} }}", {"ids": ids}
    )
    assert whole["customers"]["nodes"] == reference["nodes"]
    for selection in alone:
        for arguments in ("", ', where: "purchase_count >= 0"'):
            page = await api.data(f"{{ customers(first: 100, orderBy: CODE_ASC{arguments}) {{ nodes {{ {selection} }} }} }}")
            read = [node[selection.split()[0]] for node in page["customers"]["nodes"]]
            if selection.startswith("metrics"):
                metric = selection.split()[2]
                assert read == [{metric: node["metrics"][metric]} for node in reference["nodes"]], (selection, arguments)
            else:
                assert read == [node[selection.split()[0]] for node in reference["nodes"]], (selection, arguments)


async def test_a_page_of_some_columns_leaves_other_reads_of_its_customers_whole(api: Api, world: World) -> None:
    """A row of some columns is never what another path finds for the same customer (it is not primed into
    the customer loader): here `node(id)` and a purchase's customer, in the same document as the page."""
    key = (await api.data("{ customers(first: 1, orderBy: CODE_ASC) { nodes { id } } }"))["customers"]["nodes"][0]["id"]
    query = """query ($id: ID!) {
      customers(first: 100, orderBy: CODE_ASC) { nodes { name purchases { nodes { customer { email code } } } } }
      node(id: $id) { ... on Customer { code email industry } }
    }"""
    data = await api.data(query, {"id": key})
    assert data["node"]["code"] == "C000" and data["node"]["industry"] == "finance"
    codes = {purchase["customer"]["code"] for node in data["customers"]["nodes"] for purchase in node["purchases"]["nodes"]}
    assert codes == {"C001", "C002", "C004", "C005"}
