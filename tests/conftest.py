"""Shared fixtures: every database test runs on SQLite, and on PostgreSQL too when
SEGMENTA_TEST_POSTGRES_URL is set.  Each PostgreSQL test session works in a schema
of its own, so concurrent runs never see each other's tables."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from segmenta.storage.engine import create_engine, normalize_url, session_factory
from segmenta.storage.migrate import upgrade
from segmenta.storage.models import Base

POSTGRES_URL = os.environ.get("SEGMENTA_TEST_POSTGRES_URL")
WORKERS = 2


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Run the modules in `WORKERS` processes (pytest-xdist) unless -n was given, and whole modules
    per process whatever -n (--dist loadfile unless another --dist was asked for): a module's
    fixtures, its live server included, are set up once, and its tests run in file order (some
    build on the ones before).  The suite spends much of its time waiting on servers and
    subprocesses.  Here rather than in addopts so that a virtualenv made before pytest-xdist joined
    the dev extras still runs the suite (in one process) instead of refusing -n; `--pdb` also
    stays in one process."""
    option = config.option
    if not config.pluginmanager.hasplugin("xdist") or hasattr(config, "workerinput"):
        return
    if option.numprocesses is None and not config.getoption("usepdb", False):
        option.numprocesses = WORKERS
    if option.numprocesses and option.dist == "no":
        option.dist = "loadfile"
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


async def _postgres_engine(schema: str) -> AsyncEngine:
    assert POSTGRES_URL is not None
    url = normalize_url(POSTGRES_URL)
    admin = create_engine(url)
    async with admin.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    await admin.dispose()
    return create_engine(url, connect_args={"server_settings": {"search_path": schema}})


async def _drop_postgres_schema(schema: str) -> None:
    assert POSTGRES_URL is not None
    admin = create_engine(normalize_url(POSTGRES_URL))
    async with admin.begin() as connection:
        await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
async def migrated_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsyncEngine]:
    """One migrated database per back end for the whole test session."""
    if request.param == "sqlite":
        path = Path(tmp_path_factory.mktemp("db")) / "segmenta-test.db"
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        schema = None
    else:
        schema = f"segmenta_test_{uuid.uuid4().hex[:12]}"
        engine = await _postgres_engine(schema)
    await upgrade(engine)
    yield engine
    await engine.dispose()
    if schema is not None:
        await _drop_postgres_schema(schema)


async def _empty_all_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(table.delete())


@pytest.fixture
async def engine(migrated_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """A migrated, empty database (per back end)."""
    await _empty_all_tables(migrated_engine)
    yield migrated_engine


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with session_factory(engine)() as db_session:
        yield db_session
