"""A page of customers with their related objects costs a constant number of SQL statements."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain.access.tokens import principals
from segmenta.storage.engine import session_factory
from tests.schema.helpers import Api, build_world, global_id

PAGE_QUERY = """
query Page($first: Int!) {
  customers(first: $first, orderBy: CODE_ASC) {
    totalCount
    edges {
      node {
        code
        team { key stats { customerCount memberCount } members { role employee { name } } }
        manager { name stats { customerCount freeCapacity interactionsHandled } teams { key } }
        segments { key size }
        tags
        manualTags
        attributes
        metrics { totalSpent avgOrderValue daysSincePurchase productCategories }
        purchases(first: 2) { totalCount edges { node { amount } } }
        assignmentHistory { cause }
      }
    }
  }
}
"""


@contextmanager
def counted_statements(engine: AsyncEngine, *, tokens_cached: bool = False) -> Iterator[list[str]]:
    """The statements run on `engine` in the block.  Unless `tokens_cached`, this process's token
    cache is emptied first, so a request's count includes reading its token (as its first one would)."""
    statements: list[str] = []
    if not tokens_cached:
        principals.clear()

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_page_of_10_and_page_of_100_run_the_same_small_number_of_statements(
    api: Api, engine: AsyncEngine
) -> None:
    async with session_factory(engine)() as session:
        await build_world(session, customer_count=120)

    counts = {}
    for first in (10, 100):
        with counted_statements(engine) as statements:
            data = await api.data(PAGE_QUERY, {"first": first})
        assert len(data["customers"]["edges"]) == first
        assert data["customers"]["totalCount"] == 120
        counts[first] = len([s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))])

    print(f"statements per page: {counts}")
    assert counts[10] == counts[100], counts
    # authentication, page, count, team, team stats, members, employees, manager stats, interactions,
    # memberships, segments, segment sizes, tags, attributes, categories, purchases page and count, history
    assert counts[100] <= 20, counts


ONE_CUSTOMER = "query One($id: ID!) { customer(id: $id) { name team { key } metrics { totalSpent } } }"


async def test_one_customer_with_a_known_token_runs_one_statement(api: Api, engine: AsyncEngine) -> None:
    """bench/api.py's one-customer query: the token comes from this process's cache (read by the first
    request), so a later request runs one SELECT, the customer joined with its team (and manager), and
    nothing else but its transaction (SQLite's BEGIN; PostgreSQL's statement time limit, storage/guard.py)."""
    async with session_factory(engine)() as session:
        world = await build_world(session, customer_count=3)
    customer = global_id("Customer", world.customers["C001"])
    await api.data(ONE_CUSTOMER, {"id": customer})
    with counted_statements(engine, tokens_cached=True) as statements:
        data = await api.data(ONE_CUSTOMER, {"id": customer})
    assert data["customer"]["team"] is not None
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    others = [s for s in statements if s not in reads]
    assert len(reads) == 1, reads
    assert "teams" in reads[0], reads
    assert all(s.strip().upper() == "BEGIN" or s.startswith("SET LOCAL statement_timeout") for s in others), others


async def test_a_page_loads_only_the_relations_it_selects_fragments_included(api: Api, engine: AsyncEngine) -> None:
    """The customers resolver loads the selected relations for the whole page before its nodes
    (schema/prefetch.py): nothing it does not select, and what it selects through fragments too."""
    async with session_factory(engine)() as session:
        await build_world(session, customer_count=30)
    await api.data("{ stats { customerCount } }")  # the token is cached from here on
    with counted_statements(engine, tokens_cached=True) as statements:
        data = await api.data("{ customers(first: 30) { nodes { name } } }")
    assert len(data["customers"]["nodes"]) == 30
    assert [s.split("FROM")[1].split()[0] for s in statements if s.lstrip().upper().startswith("SELECT")] == ["customers"]
    fragments = """
    fragment Who on Customer { team { key } ... on Customer { segments { key } } }
    { customers(first: 30) { edges { node { ...Who tags } } } }"""
    with counted_statements(engine, tokens_cached=True) as statements:
        nodes = [edge["node"] for edge in (await api.data(fragments))["customers"]["edges"]]
    assert all(node["team"] is not None and isinstance(node["segments"], list) for node in nodes)
    tables = sorted(s.split("FROM")[1].split()[0] for s in statements if s.lstrip().upper().startswith("SELECT"))
    assert tables == ["customer_tags", "customers", "segment_members", "teams"], tables
