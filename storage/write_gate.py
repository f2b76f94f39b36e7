"""SQLite: one write transaction at a time per process, queued in the event loop (storage/engine.py,
`begin_writer`).

SQLite has one write lock for the whole database.  A connection that cannot get it waits in
SQLite's busy handler, which sleeps and retries at growing intervals (up to 100 ms apart): with
many writers in one process, each on its own pooled connection, the lock is often free while every
waiter sleeps, and throughput falls as clients grow.  So a process lets one of its writers at a
time ask SQLite for the lock and queues the others on an `asyncio.Lock` (first come, first served,
handed over the moment the transaction ends); only processes compete in the busy handler.

The wait is bounded like SQLite's own (SEGMENTA_SQLITE_BUSY_TIMEOUT): past it, the write fails
with `Busy` as a write that waited for SQLite's lock does.  The gate is released when the
session's outermost transaction ends (commit, rollback or close), or at once if it never began.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from segmenta.domain.errors import Busy

_HELD = "segmenta_write_gate"
_LISTENING = "segmenta_write_gate_listener"

# One lock per connection pool and event loop (an asyncio.Lock belongs to one loop; tests run several).
_gates: weakref.WeakKeyDictionary[Any, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _gate(pool: Any) -> asyncio.Lock:
    per_loop = _gates.setdefault(pool, weakref.WeakKeyDictionary())
    loop = asyncio.get_running_loop()
    gate = per_loop.get(loop)
    if gate is None:
        gate = per_loop[loop] = asyncio.Lock()
    return gate


def _release(session: Session) -> None:
    gate = session.info.pop(_HELD, None)
    if gate is not None and gate.locked():
        gate.release()


def _ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        _release(session)


async def enter(session: AsyncSession, wait: float) -> None:
    """Wait (at most `wait` seconds) for this process's turn to write; held until the session's
    transaction ends.  Nothing to do when the session already holds it."""
    sync_session = session.sync_session
    if _HELD in sync_session.info:
        return
    gate = _gate(session.get_bind().engine.pool)  # request and run engines share the pool, and the gate
    try:
        # asyncio.timeout, not wait_for: Python 3.11's wait_for may swallow the cancellation of an
        # enclosing timeout (SEGMENTA_REQUEST_TIMEOUT) when the lock comes at that very moment.
        async with asyncio.timeout(wait):
            await gate.acquire()
    except TimeoutError:
        raise Busy(
            f"the database stayed busy with other writes for {wait:g} s (SEGMENTA_SQLITE_BUSY_TIMEOUT); retry",
            retry_after=1.0,
        ) from None
    sync_session.info[_HELD] = gate
    if not sync_session.info.get(_LISTENING):
        event.listen(sync_session, "after_transaction_end", _ended)
        sync_session.info[_LISTENING] = True


def leave(session: AsyncSession) -> None:
    """Give the turn back now (the transaction it was taken for never began)."""
    _release(session.sync_session)
