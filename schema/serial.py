"""One AsyncSession shared by resolvers that run concurrently."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


class SerialSession:
    """The request's AsyncSession, one statement at a time.

    GraphQL resolves sibling fields (and DataLoader batches) concurrently, while an
    AsyncSession allows one operation at a time: every read of the API goes through
    this wrapper.  Results are buffered, so the lock is held only while a statement runs.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._lock = asyncio.Lock()

    # `parameters`: the values of a statement's bind parameters (a statement built once, schema/prebuilt.py).
    async def execute(self, statement: Any, parameters: Mapping[str, Any] | None = None) -> Any:
        return await self._serially(lambda: self.session.execute(statement, parameters))

    async def scalars(self, statement: Any, parameters: Mapping[str, Any] | None = None) -> Any:
        return await self._serially(lambda: self.session.scalars(statement, parameters))

    async def scalar(self, statement: Any, parameters: Mapping[str, Any] | None = None) -> Any:
        return await self._serially(lambda: self.session.scalar(statement, parameters))

    async def _serially(self, statement: Callable[[], Awaitable[Any]]) -> Any:
        """Run `statement` alone.  A caller cancelled (a request stopped at its time limit or by a
        disconnect) stops waiting at once, but a statement that has started finishes in its own task,
        holding the lock: interrupted half-way, it would leave the session unable to close.  A
        statement still waiting for the lock never starts."""
        started = False

        async def locked() -> Any:
            nonlocal started
            async with self._lock:
                started = True
                return await statement()

        task = asyncio.ensure_future(locked())
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not started:
                task.cancel()
            raise

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[AsyncSession]:
        """The raw session, alone, for a domain call that runs several statements."""
        async with self._lock:
            yield self.session
