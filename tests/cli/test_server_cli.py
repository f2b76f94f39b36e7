"""`segmenta demo` and `segmenta serve`: migrations, sample data, token, and the app they serve."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select
from starlette.applications import Starlette

from segmenta.cli import main
from segmenta.cli import server as cli_server
from segmenta.storage.engine import create_engine, session_factory
from segmenta.storage.models import Customer, RulesetVersion

TOKEN_URL = re.compile(r"http://127\.0\.0\.1:(\d+)/graphql\?token=(sgm_[A-Za-z0-9_-]+)")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Captures what would have been passed to uvicorn.run instead of serving forever."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(cli_server.uvicorn, "run", lambda app, **options: calls.append({"app": app, **options}))
    return calls


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def scalar(url: str, statement: Any) -> Any:
    async def run() -> Any:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session:
                return (await session.execute(statement)).scalar_one()
        finally:
            await engine.dispose()

    return asyncio.run(run())


def graphql(app: Starlette, token: str, query: str) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post(
                "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"}
            )
        await app.state.engine.dispose()
        return response.json()

    return asyncio.run(run())


def test_demo_no_serve_seeds_routes_and_prints_a_working_token_url(db_url: str, served: list[dict[str, Any]]) -> None:
    result = invoke("demo", "--no-serve", "--customers", "150", "--port", "8123", "--database-url", db_url)
    assert result.exit_code == 0, result.output
    match = TOKEN_URL.search(result.stdout)
    assert match is not None and match.group(1) == "8123"
    token = match.group(2)
    assert f"Bearer {token}" in result.stdout and "curl" in result.stdout
    assert "Policy workbench:             http://127.0.0.1:8123/workbench" in result.stdout
    # Nothing is served: the output does not say it is, and tells how to start the server.
    assert "is ready" not in result.stdout and "no server is running" in result.stdout
    assert f"segmenta serve --host 127.0.0.1 --port 8123 --database-url {db_url}" in result.stdout
    assert "seeded 150 customers" in result.stderr and "routed 150 customers" in result.stderr
    assert served == []
    assert scalar(db_url, select(func.count()).select_from(Customer)) == 150
    assert scalar(db_url, select(func.count()).select_from(Customer).where(Customer.team_id.is_not(None))) == 150
    assert scalar(db_url, select(RulesetVersion.status).where(RulesetVersion.name == "sample")) == "active"

    again = invoke("demo", "--no-serve", "--customers", "40", "--database-url", db_url)
    assert again.exit_code == 0 and "already holds data" in again.stderr
    second = TOKEN_URL.search(again.stdout)
    assert second is not None and second.group(2) != token
    assert scalar(db_url, select(func.count()).select_from(Customer)) == 150


def test_demo_serves_an_app_that_accepts_the_printed_token(db_url: str, served: list[dict[str, Any]]) -> None:
    result = invoke("demo", "--customers", "30", "--port", "8124", "--database-url", db_url, "--workers", "1")
    assert result.exit_code == 0, result.output
    token = TOKEN_URL.search(result.stdout).group(2)  # type: ignore[union-attr]
    assert "Segmenta demo is ready." in result.stdout and "no server is running" not in result.stdout
    (call,) = served
    assert (call["host"], call["port"]) == ("127.0.0.1", 8124)
    body = graphql(call["app"], token, "{ customers(first: 2) { totalCount edges { node { code } } } }")
    assert body["data"]["customers"]["totalCount"] == 30


def test_serve_migrates_a_new_database_then_runs_the_app(tmp_path: Path, served: list[dict[str, Any]]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    result = invoke("serve", "--host", "0.0.0.0", "--port", "9001", "--database-url", url, "--workers", "1")
    assert result.exit_code == 0, result.output
    (call,) = served
    assert isinstance(call["app"], Starlette) and (call["host"], call["port"]) == ("0.0.0.0", 9001)
    assert scalar(url, select(func.count()).select_from(Customer)) == 0  # the schema exists
    token = invoke("token", "create", "--role", "viewer", "--database-url", url).stdout.strip()
    body = graphql(call["app"], token, "{ customers(first: 1) { totalCount } }")
    assert body["data"]["customers"]["totalCount"] == 0
    assert "errors" in graphql(call["app"], "sgm_not-a-token", "{ customers(first: 1) { totalCount } }")


def test_serve_refuses_a_bad_run_wait_setting_by_name(
    tmp_path: Path, served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGMENTA_RUN_WAIT", "soon")
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    result = CliRunner().invoke(main, ["serve", "--database-url", url])
    assert result.exit_code == 1 and served == []
    assert "SEGMENTA_RUN_WAIT must be a number of seconds" in result.output


def test_serve_with_workers_migrates_once_then_hands_an_import_string_to_the_supervisor(
    tmp_path: Path, served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    supervised: list[tuple[str, Any, str | None]] = []

    def supervise(url: str, config: Any) -> None:
        supervised.append((url, config, None))

    monkeypatch.setattr(cli_server, "serve_workers", supervise)
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    result = invoke("serve", "--port", "9002", "--database-url", url, "--workers", "3")
    assert result.exit_code == 0, result.output
    assert served == []  # not one process: the supervisor's children serve
    ((given_url, config, _),) = supervised
    assert given_url == url and scalar(url, select(func.count()).select_from(Customer)) == 0  # migrated first
    assert (config.app, config.factory, config.workers, config.port) == ("segmenta.server:worker_app", True, 3, 9002)


def test_workers_default_to_the_cores_and_an_in_memory_database_takes_one(
    served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli_server.default_workers() == len(os.sched_getaffinity(0))
    result = CliRunner().invoke(main, ["serve", "--database-url", "sqlite+aiosqlite:///:memory:", "--workers", "2"])
    assert result.exit_code == 1 and served == []
    assert "in-memory SQLite database is private to one process; use --workers 1" in result.output
    refused = CliRunner().invoke(main, ["serve", "--workers", "0"])
    assert refused.exit_code == 2 and "--workers" in refused.output


def test_the_connection_budget_warns_when_workers_may_open_more_than_postgresql_takes() -> None:
    assert cli_server.connection_budget_warning(2, (5, 10), 97) is None  # 32 ≤ 97
    warning = cli_server.connection_budget_warning(8, (5, 10), 97)
    assert warning is not None and "= 128 connections at most" in warning and "takes 97" in warning


def test_a_bad_pool_setting_stops_serve_by_name(
    tmp_path: Path, served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGMENTA_POOL_SIZE", "0")
    result = CliRunner().invoke(main, ["serve", "--database-url", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 1 and served == [] and "SEGMENTA_POOL_SIZE" in result.output
