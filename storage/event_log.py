"""The two ways events travel between server processes (domain/event_relay.py decides what and when).

* SQLite: the ``event_log`` table.  A process appends its events as rows (`append`, one write
  transaction, which also prunes rows older than the retention), and every process reads the rows
  after the last id it saw (`read_after`).  Ids only grow and are never reused, so a reader that
  finds its next id gone knows rows it never read were pruned.
* PostgreSQL: ``NOTIFY segmenta_events`` on a connection of its own per process (`Listener`), which
  also LISTENs.  A notification carries at most 8000 bytes: the relay sends payloads smaller than
  `NOTIFY_LIMIT`.  Notifications reach every listener in commit order; one sent while a listener's
  connection was down is lost to it, so a lost connection is reported (`on_lost`) before the
  listener connects again.

Payloads are opaque text here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no types; used here only (LISTEN/NOTIFY)
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.storage.models import EventLog, utcnow

logger = logging.getLogger(__name__)

CHANNEL = "segmenta_events"
# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; a little room is left.
NOTIFY_LIMIT = 7900

_log = EventLog.__table__


async def latest_id(engine: AsyncEngine) -> int:
    """The id of the newest row (or of the last one ever, when all were deleted), 0 when there was
    none: a new reader starts after it."""
    async with engine.connect() as connection:
        value = await connection.scalar(select(func.max(_log.c.id)))
        if value is None and engine.dialect.name == "sqlite":
            # AUTOINCREMENT goes on after the last id ever given, even from an emptied table.
            value = await connection.scalar(text("SELECT seq FROM sqlite_sequence WHERE name = 'event_log'"))
    return int(value or 0)


async def read_after(engine: AsyncEngine, after: int, limit: int) -> list[tuple[int, str, str]]:
    """(id, origin, payload) of up to `limit` rows after id `after`, oldest first."""
    statement = select(_log.c.id, _log.c.origin, _log.c.payload).where(_log.c.id > after).order_by(_log.c.id).limit(limit)
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return [(row.id, row.origin, row.payload) for row in rows]


async def append(engine: AsyncEngine, origin: str, payloads: Sequence[str], *, prune_older_than: float | None) -> None:
    """Append `payloads` as rows in one transaction; with `prune_older_than` (seconds), also delete the
    rows older than that (never the newest row: a reader starting later finds the current id)."""
    now = utcnow()
    async with engine.begin() as connection:
        await connection.execute(insert(_log), [{"created_at": now, "origin": origin, "payload": text} for text in payloads])
        if prune_older_than is not None:
            newest = select(func.max(_log.c.id)).scalar_subquery()
            await connection.execute(
                delete(_log).where(_log.c.created_at < now - timedelta(seconds=prune_older_than), _log.c.id < newest)
            )


def asyncpg_dsn(engine: AsyncEngine) -> str:
    """The engine's PostgreSQL URL as asyncpg takes it (no SQLAlchemy driver name)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """One PostgreSQL connection that LISTENs on `CHANNEL` and sends this process's NOTIFYs."""

    def __init__(self, dsn: str, on_payload: Callable[[str], None], on_lost: Callable[[str], None]) -> None:
        self.dsn = dsn
        self.on_payload = on_payload
        self.on_lost = on_lost
        self._connection: asyncpg.Connection | None = None
        self._closing = False
        self.dropped = asyncio.Event()  # set when the connection went away; the relay connects again

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    async def connect(self) -> None:
        self.dropped.clear()
        connection = await asyncpg.connect(self.dsn)
        connection.add_termination_listener(self._terminated)
        await connection.add_listener(CHANNEL, self._notified)
        self._connection = connection

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self.on_payload(payload)

    def _terminated(self, _connection: Any) -> None:
        if not self._closing:
            self._lost("the connection that brings other processes' events was closed")

    def _lost(self, reason: str) -> None:
        self._connection = None
        self.on_lost(reason)
        self.dropped.set()

    async def notify(self, payloads: Sequence[str]) -> None:
        """Send `payloads` (each under NOTIFY_LIMIT bytes), in order, in one round trip."""
        connection = self._connection
        if connection is None:
            raise ConnectionError("not connected")
        try:
            await connection.execute(
                "SELECT pg_notify($1, payload) FROM unnest($2::text[]) WITH ORDINALITY AS sent(payload, n) ORDER BY n",
                CHANNEL,
                list(payloads),
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            if not connection.is_closed():
                connection.terminate()  # a connection in doubt may have missed notifications too
            if self._connection is connection:
                self._lost(f"the connection that carries events failed ({type(error).__name__})")
            raise

    async def close(self) -> None:
        self._closing = True
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            try:
                await asyncio.wait_for(connection.close(), 5)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                connection.terminate()

