"""Fixtures for the GraphQL tests: the app over the test database, a client per role."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain.access.tokens import create_token
from segmenta.server import create_app
from segmenta.storage import models
from segmenta.storage.engine import session_factory
from tests.schema.helpers import Api, World, build_world

ROLES = ("admin", "manager", "viewer")


@pytest.fixture
async def http(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    # Runs on these tiny worlds finish at once; a long wait keeps the payloads deterministic under load.
    transport = httpx.ASGITransport(app=create_app(engine=engine, run_wait=60))
    async with httpx.AsyncClient(transport=transport, base_url="http://segmenta.test") as client:
        yield client


@pytest.fixture
async def tokens(engine: AsyncEngine) -> dict[str, str]:
    async with session_factory(engine)() as session:
        created = {role: await create_token(session, role, label=f"test {role}") for role in ROLES}
        await session.commit()
    return created


@pytest.fixture
async def agent_token(engine: AsyncEngine) -> str:
    """An agent token; agents are bound to an employee (`agent@example.com`, created here)."""
    async with session_factory(engine)() as session:
        session.add(models.Employee(name="Agent Smith", email="agent@example.com"))
        await session.flush()
        token = await create_token(session, "agent", employee_email="agent@example.com", label="test agent")
        await session.commit()
    return token


@pytest.fixture
def api(http: httpx.AsyncClient, tokens: dict[str, str]) -> Api:
    """Calls as admin unless a call passes another token."""
    return Api(http, tokens["admin"])


@pytest.fixture
async def world(engine: AsyncEngine) -> World:
    async with session_factory(engine)() as session:
        return await build_world(session)
