"""A subscription's token is checked again while events flow, whatever the transport: after revocation no
event carries data (in-process stream here, on both back ends; the served websocket: test_live_tokens.py)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain.access.tokens import OPERATOR, authenticate, create_token, revoke_token
from segmenta.domain.customers import profiles
from segmenta.domain.events import hub
from segmenta.storage.engine import session_factory
from tests.schema.test_subscriptions import CHANGES, _context, _first, _subscribe, _until_subscribed, _world


async def test_after_revocation_every_event_is_an_unauthenticated_error(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGMENTA_TOKEN_RECHECK", "0")  # check at every event
    await _world(engine)
    async with session_factory(engine)() as session:
        token = await create_token(session, "viewer", label="revoked while subscribed")
        await session.commit()
        stream = await _subscribe(CHANGES, await _context(session, token), {})
        before = hub.assignments.subscriber_count
        pending = asyncio.ensure_future(_first(stream))
        await _until_subscribed(hub.assignments, before)
        async with session_factory(engine)() as writer:
            created = await profiles.create_customer(writer, {"code": "n1", "name": "N1", "size": "small"})
            await writer.commit()
            delivered = await asyncio.wait_for(pending, 30)
            assert delivered.errors is None and delivered.data is not None

            principal = await authenticate(writer, token)
            assert principal is not None
            await revoke_token(writer, OPERATOR, principal.token_id)
            await writer.commit()

            for size in ("large", "small"):
                pending = asyncio.ensure_future(_first(stream))
                await profiles.update_customer(writer, created.id, {"size": size})
                await writer.commit()
                refused = await asyncio.wait_for(pending, 30)
                assert refused.data is None
                assert [error.extensions["code"] for error in refused.errors or []] == ["UNAUTHENTICATED"]
        await stream.aclose()  # type: ignore[attr-defined]
