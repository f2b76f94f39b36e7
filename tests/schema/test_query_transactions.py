"""On PostgreSQL a query operation reads in autocommit, with no BEGIN or ROLLBACK round trip
(schema/query_transactions.py); a mutation still runs in a transaction, and SQLite keeps its
transaction for the request's one snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.schema.helpers import Api, World, global_id

ONE_CUSTOMER = "query ($id: ID!) { customer(id: $id) { name team { key } segments { key } tags } }"
PAGE = "{ customers(first: 5) { nodes { name team { key } segments { key } tags } totalCount } }"
RENAME = 'mutation ($id: ID!) { updateCustomer(id: $id, input: {name: "Renamed"}) { customer { name } userErrors { code } } }'


@contextmanager
def server_transactions(engine: AsyncEngine) -> Iterator[list[str]]:
    """What opened a transaction on the server: PostgreSQL's asyncpg transactions started, SQLite's BEGINs."""
    opened: list[str] = []
    if engine.dialect.name == "postgresql":
        import asyncpg

        real = asyncpg.transaction.Transaction.start

        async def start(self: Any) -> None:
            opened.append("BEGIN")
            await real(self)

        asyncpg.transaction.Transaction.start = start  # type: ignore[method-assign]
        try:
            yield opened
        finally:
            asyncpg.transaction.Transaction.start = real  # type: ignore[method-assign]
    else:

        def begin(connection: Any) -> None:
            opened.append("BEGIN")

        event.listen(engine.sync_engine, "begin", begin)
        try:
            yield opened
        finally:
            event.remove(engine.sync_engine, "begin", begin)


@pytest.mark.parametrize("document", [ONE_CUSTOMER, PAGE])
async def test_a_query_opens_no_transaction_on_postgresql(api: Api, engine: AsyncEngine, world: World, document: str) -> None:
    variables = {"id": global_id("Customer", world.customers["C001"])}
    await api.data(document, variables)  # the token is read and cached first
    with server_transactions(engine) as opened:
        data = await api.data(document, variables)
    assert data
    if engine.dialect.name == "postgresql":
        assert opened == []
    else:
        assert opened == ["BEGIN"]  # one snapshot for the whole request


async def test_a_mutation_still_runs_in_a_transaction(api: Api, engine: AsyncEngine, world: World) -> None:
    variables = {"id": global_id("Customer", world.customers["C001"])}
    await api.data(ONE_CUSTOMER, variables)
    with server_transactions(engine) as opened:
        data = await api.data(RENAME, variables)
    assert data["updateCustomer"] == {"customer": {"name": "Renamed"}, "userErrors": []}
    assert opened, "the mutation's writes ran outside a transaction"
