"""SEGMENTA_REQUEST_TIMEOUT in the app, on both back ends: an operation past its time is stopped
with TIMEOUT, its open transaction is rolled back and its database connection goes back to the pool.

(The served process is tested in test_request_limits_live.py; this test needs the `engine` fixture
to cover PostgreSQL too.)"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.schema.limits import request_limits
from segmenta.server import create_app
from segmenta.storage import models
from segmenta.storage.engine import session_factory
from tests.schema.helpers import World

TIMEOUT = 0.3
WRITES = 300


@pytest.fixture
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    settings = {
        "SEGMENTA_REQUEST_TIMEOUT": str(TIMEOUT),
        "SEGMENTA_MAX_ALIASES": str(WRITES),
        "SEGMENTA_MAX_QUERY_TOKENS": "100000",
        "SEGMENTA_MAX_QUERY_COST": "1000000",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    request_limits.cache_clear()
    yield
    request_limits.cache_clear()


async def customer_count(engine: AsyncEngine) -> int:
    async with session_factory(engine)() as session:
        return int((await session.execute(select(func.count()).select_from(models.Customer))).scalar_one())


def creations(count: int, prefix: str) -> str:
    return "mutation { " + " ".join(
        f'c{index}: createCustomer(input: {{code: "{prefix}{index}", name: "Customer {index}"}}) {{ userErrors {{ code }} }}'
        for index in range(count)
    ) + " }"


async def test_a_long_mutation_document_is_stopped_and_its_open_transaction_rolled_back(
    engine: AsyncEngine, tokens: dict[str, str], world: World, short_timeout: None
) -> None:
    before = await customer_count(engine)
    transport = httpx.ASGITransport(app=create_app(engine=engine, run_wait=60))
    headers = {"Authorization": f"Bearer {tokens['admin']}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://segmenta.test", timeout=120) as client:
        response = await client.post("/graphql", json={"query": creations(WRITES, "T")}, headers=headers)
        body = response.json()
        assert response.status_code == 200
        assert body["data"] is None
        [error] = body["errors"]
        assert error["extensions"] == {"code": "TIMEOUT", "retryable": True}
        # Mutations run one after another, each committing on its own: those before the limit stay,
        # the one under way is rolled back, the rest never run.
        created = await customer_count(engine) - before
        assert 0 <= created < WRITES
        # Nothing is left holding a connection or a lock: the next write goes through.
        assert engine.pool.checkedout() == 0
        response = await client.post("/graphql", json={"query": creations(1, "After")}, headers=headers)
        assert response.json() == {"data": {"c0": {"userErrors": []}}}
    assert await customer_count(engine) == before + created + 1
