"""One AsyncSession shared by resolvers that run concurrently."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
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

    async def execute(self, statement: Any) -> Any:
        async with self._lock:
            return await self.session.execute(statement)

    async def scalars(self, statement: Any) -> Any:
        async with self._lock:
            return await self.session.scalars(statement)

    async def scalar(self, statement: Any) -> Any:
        async with self._lock:
            return await self.session.scalar(statement)

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[AsyncSession]:
        """The raw session, alone, for a domain call that runs several statements."""
        async with self._lock:
            yield self.session
