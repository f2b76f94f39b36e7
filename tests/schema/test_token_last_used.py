"""`ApiToken.lastUsedAt` through the API, and what recording it costs: authentication writes a token's
row at most once a minute, however many requests it serves (docs/security.md, Tokens)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.storage import models
from segmenta.storage.engine import session_factory
from segmenta.storage.models import utcnow
from tests.schema.helpers import Api
from tests.schema.test_statement_count import counted_statements

LIST = "{ apiTokens { label lastUsedAt } }"


def _writes(statements: list[str]) -> int:
    return sum(1 for statement in statements if statement.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE")))


async def test_forty_requests_write_the_token_once_and_the_admin_sees_when(
    api: Api, engine: AsyncEngine, tokens: dict[str, str]
) -> None:
    with counted_statements(engine) as statements:
        for _ in range(40):
            await api.data("{ teams { key } }", token=tokens["viewer"])
    # Every write of 40 read requests: the viewer token's last use, once.
    assert _writes(statements) == 1, [s for s in statements if _writes([s])]

    shown = {item["label"]: item["lastUsedAt"] for item in (await api.data(LIST))["apiTokens"]}
    assert shown["test manager"] is None  # never used
    used = datetime.fromisoformat(shown["test viewer"].replace("Z", "+00:00")).replace(tzinfo=None)
    assert utcnow() - used < timedelta(seconds=30)

    # A minute later the next request records its use again (once).
    async with session_factory(engine)() as session:
        await session.execute(
            update(models.ApiToken).where(models.ApiToken.label == "test viewer").values(last_used_at=utcnow() - timedelta(minutes=2))
        )
        await session.commit()
    with counted_statements(engine) as statements:
        for _ in range(5):
            await api.data("{ teams { key } }", token=tokens["viewer"])
    assert _writes(statements) == 1
    again = {item["label"]: item["lastUsedAt"] for item in (await api.data(LIST))["apiTokens"]}
    assert again["test viewer"] > shown["test viewer"]
