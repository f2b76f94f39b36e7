"""`segmenta token create --expires-in/--expires-at`, `token list`, `token revoke` (SQLite files;
tests/domain/test_tokens.py covers the same domain functions on PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from segmenta.cli import main
from segmenta.domain.access.tokens import authenticate, hash_token
from segmenta.storage.engine import create_engine, session_factory
from segmenta.storage.models import ApiToken, utcnow
from tests.cli.test_data_cli import authenticate_token, query


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'tokens.db'}"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def create(db_url: str, *args: str) -> str:
    result = invoke("token", "create", *args, "--database-url", db_url)
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def token_count(db_url: str) -> int:
    return query(db_url, select(func.count()).select_from(ApiToken))[0][0]  # type: ignore[index,no-any-return]


def listed(db_url: str) -> list[dict[str, str]]:
    result = invoke("token", "list", "--database-url", db_url)
    assert result.exit_code == 0, result.stderr
    header, *rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert header == ["id", "role", "employee", "label", "created", "expires", "revoked", "last-used"]
    return [dict(zip(header, row, strict=True)) for row in rows]


def test_create_with_an_expiry_list_and_revoke(db_url: str) -> None:
    forever = create(db_url, "--role", "admin", "--label", "ops\tdesk")
    month = create(db_url, "--role", "viewer", "--expires-in", "30d")
    fixed = create(db_url, "--role", "viewer", "--expires-at", "2030-06-30T18:00:00+02:00")

    rows = listed(db_url)
    assert [(row["id"], row["role"], row["label"], row["revoked"]) for row in rows] == [
        ("1", "admin", "ops desk", "-"),
        ("2", "viewer", "-", "-"),
        ("3", "viewer", "-", "-"),
    ]
    assert rows[0]["expires"] == "-"
    expires = datetime.fromisoformat(rows[1]["expires"].removesuffix("Z"))
    assert abs(expires - (utcnow() + timedelta(days=30))) < timedelta(minutes=5)
    assert rows[2]["expires"] == "2030-06-30T16:00:00Z"  # stored and shown in UTC
    output = invoke("token", "list", "--database-url", db_url).stdout
    for secret in (forever, month, fixed):
        assert secret not in output and hash_token(secret) not in output

    result = invoke("token", "revoke", "2", "--database-url", db_url)
    assert result.exit_code == 0, result.stderr
    assert "revoked token 2" in result.stderr
    assert authenticate_token(db_url, month) is None
    assert authenticate_token(db_url, forever) is not None
    assert listed(db_url)[1]["revoked"] != "-"


def test_revoking_twice_or_an_unknown_id_fails_clearly(db_url: str) -> None:
    create(db_url, "--role", "viewer")
    assert invoke("token", "revoke", "1", "--database-url", db_url).exit_code == 0
    twice = invoke("token", "revoke", "1", "--database-url", db_url)
    assert twice.exit_code == 2 and "already revoked" in twice.stderr
    for unknown in ("99", "0", str(2**40)):
        result = invoke("token", "revoke", unknown, "--database-url", db_url)
        assert result.exit_code == 2 and "does not exist" in result.stderr, result.stderr
    malformed = invoke("token", "revoke", "abc", "--database-url", db_url)
    assert malformed.exit_code == 2 and "is not a valid integer" in malformed.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--expires-in", "30"], "--expires-in: '30' is not a duration"),
        (["--expires-in", "1y"], "is not a duration"),
        (["--expires-in", "0d"], "not a positive duration"),
        (["--expires-in", "99999d"], "longer than"),
        (["--expires-at", "tomorrow"], "--expires-at 'tomorrow' is not an ISO 8601 date-time"),
        (["--expires-at", "2001-01-01"], "--expires-at: the expiry 2001-01-01T00:00:00Z is not in the future"),
        (["--expires-at", "2099-01-01", "--expires-in", "1d"], "not both"),
    ],
)
def test_bad_expiries_are_refused_and_write_nothing(db_url: str, args: list[str], message: str) -> None:
    create(db_url, "--role", "admin")
    result = invoke("token", "create", "--role", "viewer", *args, "--database-url", db_url)
    assert result.exit_code == 2 and result.stdout == ""
    assert message in " ".join(result.stderr.split()), result.stderr
    assert token_count(db_url) == 1


def test_an_expired_token_no_longer_authenticates(db_url: str) -> None:
    token = create(db_url, "--role", "viewer", "--expires-in", "1h")
    assert authenticate_token(db_url, token) is not None

    async def expire() -> None:
        engine = create_engine(db_url)
        try:
            async with session_factory(engine)() as session:
                row = await session.scalar(select(ApiToken))
                assert row is not None
                row.expires_at = utcnow() - timedelta(seconds=1)
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(expire())
    assert authenticate_token(db_url, token) is None


def test_list_shows_when_each_token_was_last_used(db_url: str) -> None:
    used = create(db_url, "--role", "viewer", "--label", "script")
    create(db_url, "--role", "viewer", "--label", "idle")
    assert [row["last-used"] for row in listed(db_url)] == ["-", "-"]

    async def authenticate_and_commit() -> None:
        engine = create_engine(db_url)
        try:
            async with session_factory(engine)() as session:
                assert await authenticate(session, used) is not None
                await session.commit()
        finally:
            await engine.dispose()

    before = utcnow()
    asyncio.run(authenticate_and_commit())
    script, idle = listed(db_url)
    last_used = datetime.fromisoformat(script["last-used"].removesuffix("Z"))
    assert before - timedelta(seconds=1) <= last_used <= utcnow() + timedelta(seconds=1)
    assert idle["last-used"] == "-"
