"""Migration 0003 (inactive teams, tokens' last use) upgrades a database made by 0002 with data in it:
existing teams stay active, existing tokens have no last use yet."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.storage.engine import create_engine
from segmenta.storage.migrate import alembic_config
from tests.conftest import BACKENDS, _drop_postgres_schema, _postgres_engine


@pytest.fixture(params=BACKENDS)
async def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
        yield engine
        await engine.dispose()
        return
    schema = f"segmenta_migration_{uuid.uuid4().hex[:12]}"
    engine = await _postgres_engine(schema)
    yield engine
    await engine.dispose()
    await _drop_postgres_schema(schema)


def _upgrade_to(revision: str) -> object:
    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    return run


async def test_0003_upgrades_a_0002_database_keeping_its_rows(empty_engine: AsyncEngine) -> None:
    async with empty_engine.begin() as connection:
        await connection.run_sync(_upgrade_to("0002"))  # type: ignore[arg-type]
        await connection.execute(
            text("INSERT INTO teams (key, name, kind, strategy, round_robin_position, created_at) "
                 "VALUES ('east', 'East', 'general', 'round_robin', 0, CURRENT_TIMESTAMP)")
        )
        await connection.execute(
            text("INSERT INTO api_tokens (token_hash, role, created_at) VALUES ('h', 'admin', CURRENT_TIMESTAMP)")
        )
    async with empty_engine.begin() as connection:
        await connection.run_sync(_upgrade_to("0003"))  # type: ignore[arg-type]
    async with empty_engine.connect() as connection:
        version = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
        active = (await connection.execute(text("SELECT active FROM teams WHERE key = 'east'"))).scalar_one()
        last_used = (await connection.execute(text("SELECT last_used_at FROM api_tokens"))).scalar_one()
    assert version == "0003"
    assert bool(active) is True
    assert last_used is None
    # A team inserted without naming the column (an older writer) is active too.
    async with empty_engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO teams (key, name, kind, strategy, round_robin_position, created_at) "
                 "VALUES ('west', 'West', 'general', 'round_robin', 0, CURRENT_TIMESTAMP)")
        )
        assert bool((await connection.execute(text("SELECT active FROM teams WHERE key = 'west'"))).scalar_one())
