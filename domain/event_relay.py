"""Events between server processes: what one process publishes reaches the subscribers of all
(docs/graphql.md, 'Subscriptions across processes').

A relay runs in each server process (server.py starts it with the app).  It takes the events its
process publishes on the hub (domain/events.py: ``hub.forward``), already delivered to the local
subscribers, and sends them to the other processes through the database (storage/event_log.py);
it delivers what the other processes sent to its local subscribers (``hub.deliver``), skipping its
own.  Sending happens in a task of its own, so a mutation never waits for it.

* PostgreSQL: NOTIFY/LISTEN on one extra connection per process; several payloads of at most
  7900 bytes when a batch is larger (PostgreSQL's limit is 8000).  Works across every server
  on the database.
* SQLite: rows of ``event_log``, read by each process every `POLL_SECONDS` (75 ms) after the last
  id it saw, pruned after `RETENTION_SECONDS` (60 s) by the writers.  Works across every process
  on the database file (the workers of one server, several servers on one file).

A batch the database does not take (SQLite's lock held past the busy timeout by a long write,
PostgreSQL reconnecting) is kept and tried again, in order: late, not lost.  Past `MAX_PENDING`
waiting events a process drops new ones, and the next batch it sends starts with a marker that
makes every receiver tell its subscribers.

Never a silent gap: when events may have been missed — PostgreSQL: the relay's connection was
lost (every notification in between is lost to it); SQLite: rows this process had not read yet
were pruned (it was stalled for a minute) — every local subscriber is told (``hub.lose_all``:
its subscription ends with ``EVENTS_LOST``); while PostgreSQL's connection is down a new
subscriber is told at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain.events import AssignmentChangeEvent, EventHub, RunProgressEvent, hub
from segmenta.storage import event_log

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.075
RETENTION_SECONDS = 60.0
# How often (at most) a writer prunes event_log rows older than the retention (SQLite).
PRUNE_EVERY = 10.0
# Rows read per poll; a process that finds more reads again at once.
READ_LIMIT = 500
# A row of event_log holds at most this much (SQLite has no limit of its own worth meeting).
ROW_LIMIT = 256 * 1024
# Events waiting to be sent beyond this many are dropped (logged): the database is not taking them.
MAX_PENDING = 100_000
PRUNED = "the server pruned events this process had not read yet (it was stalled for over a minute)"
UNDECODABLE = "an event from another process could not be read"
SENDER_DROPPED = "another server process could not send all its events (the database did not take them in time)"
# Seconds between two tries of a batch the database did not take (a long write holds SQLite's lock,
# PostgreSQL is reconnecting): at most this, doubling from a tenth of a second.
RETRY_CAP = 5.0


class _Dropped:
    """Sent, in order, in place of events this process had to drop: the receivers tell their subscribers."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Dropped)

    def __hash__(self) -> int:
        return 0


DROPPED = _Dropped()

Event = RunProgressEvent | AssignmentChangeEvent | _Dropped


def _encode_item(item: Event) -> str:
    if isinstance(item, _Dropped):
        return '["x"]'
    if isinstance(item, RunProgressEvent):
        return json.dumps(["p", item.run_id, item.step, item.done, item.total, item.status])
    changed = item.changed_at.isoformat() if item.changed_at is not None else None
    return json.dumps(
        [
            "a",
            item.customer_id,
            item.team_before_id,
            item.team_after_id,
            item.manager_before_id,
            item.manager_after_id,
            item.cause,
            item.rule,
            item.run_id,
            changed,
        ]
    )


def encode(origin: str, items: Sequence[Event], limit: int) -> list[str]:
    """Payloads of at most `limit` bytes (UTF-8) holding `items` in order (one item alone may exceed it)."""
    head = '{"o":' + json.dumps(origin) + ',"e":['
    payloads: list[str] = []
    parts: list[str] = []
    size = len(head.encode()) + 2
    for item in items:
        text = _encode_item(item)
        length = len(text.encode()) + 1
        if parts and size + length > limit:
            payloads.append(head + ",".join(parts) + "]}")
            parts, size = [], len(head.encode()) + 2
        parts.append(text)
        size += length
    if parts:
        payloads.append(head + ",".join(parts) + "]}")
    return payloads


def _decode_item(item: list[Any]) -> Event:
    if item == ["x"]:
        return DROPPED
    if item[0] == "p":
        _, run_id, step, done, total, status = item
        return RunProgressEvent(int(run_id), str(step), int(done), int(total), str(status))
    _, customer_id, team_before, team_after, manager_before, manager_after, cause, rule, run_id, changed = item
    return AssignmentChangeEvent(
        customer_id=int(customer_id),
        team_before_id=team_before,
        team_after_id=team_after,
        manager_before_id=manager_before,
        manager_after_id=manager_after,
        cause=str(cause),
        rule=rule,
        run_id=run_id,
        changed_at=datetime.fromisoformat(changed) if changed is not None else None,
    )


def decode(payload: str) -> tuple[str, list[Event]]:
    """(origin, events) of a payload; ValueError when it is not one."""
    try:
        data = json.loads(payload)
        return str(data["o"]), [_decode_item(item) for item in data["e"]]
    except (KeyError, TypeError, IndexError, ValueError) as error:
        raise ValueError(f"not an event payload: {error}") from error


def deliver(target: EventHub, items: Sequence[Event]) -> None:
    for item in items:
        if isinstance(item, _Dropped):
            target.lose_all(SENDER_DROPPED)
        elif isinstance(item, RunProgressEvent):
            target.deliver(progress=[item])
        else:
            target.deliver(changes=[item])


class EventRelay:
    """This process's end of the events between processes, over `engine`'s database."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        target: EventHub = hub,
        poll: float = POLL_SECONDS,
        retention: float = RETENTION_SECONDS,
        origin: str | None = None,
    ) -> None:
        self.engine = engine
        self.target = target
        self.poll = poll
        self.retention = retention
        self.origin = origin or f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.postgres = engine.dialect.name == "postgresql"
        self.last_id = 0
        self._pending: list[Event] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._pruned_at = 0.0
        self._dropped = False  # events were dropped here: the next batch sent says so first
        self._listener: event_log.Listener | None = None

    async def start(self) -> None:
        if self.postgres:
            self._listener = event_log.Listener(event_log.asyncpg_dsn(self.engine), self._received, self._lost)
            await self._listener.connect()
            self._tasks.append(asyncio.create_task(self._reconnect_forever(), name="event relay: reconnect"))
        else:
            self.last_id = await event_log.latest_id(self.engine)
            self._tasks.append(asyncio.create_task(self._poll_forever(), name="event relay: poll"))
        self._tasks.append(asyncio.create_task(self._send_forever(), name="event relay: send"))
        self.target.forward = self._forward

    async def stop(self) -> None:
        """Send what is still waiting (a run's last event at shutdown), then stop."""
        if self.target.forward == self._forward:
            self.target.forward = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        items, self._pending = self._pending, []
        if items:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._send(items), 5)
        if self._listener is not None:
            await self._listener.close()
        self.target.set_outage(None)

    # -- sending ------------------------------------------------------------------------------

    def _forward(self, progress: Sequence[RunProgressEvent], changes: Sequence[AssignmentChangeEvent]) -> None:
        if len(self._pending) >= MAX_PENDING:
            if not self._dropped:
                logger.error("events dropped: %s already wait to be sent to the other processes", len(self._pending))
            self._dropped = True
            return
        self._pending.extend(progress)
        self._pending.extend(changes)
        self._wake.set()

    async def _send_forever(self) -> None:
        delay = 0.0
        while True:
            await self._wake.wait()
            self._wake.clear()
            items, self._pending = self._pending, []
            # This batch announces the drops so far; a drop while it is being sent sets the flag again,
            # for the next batch.
            announced, self._dropped = self._dropped, False
            if not items and not announced:
                continue
            batch: list[Event] = [DROPPED, *items] if announced else items
            try:
                await self._send(batch)
            except asyncio.CancelledError:
                self._pending[:0] = items  # stop() sends them
                self._dropped = self._dropped or announced
                raise
            except Exception:  # noqa: BLE001 — the relay must outlive a database hiccup
                # Kept, in order, and tried again: late rather than lost (one statement sends a
                # batch, so a failed try sent nothing of it).
                self._pending[:0] = items
                self._dropped = self._dropped or announced
                delay = min(RETRY_CAP, max(0.1, delay * 2))
                logger.warning("%s events not sent yet; trying again in %.1f s", len(batch), delay, exc_info=True)
                await asyncio.sleep(delay)
                self._wake.set()
                continue
            delay = 0.0

    async def _send(self, items: Sequence[Event]) -> None:
        if self._listener is not None:
            await self._listener.notify(encode(self.origin, items, event_log.NOTIFY_LIMIT))
            return
        prune = time.monotonic() - self._pruned_at >= PRUNE_EVERY
        await event_log.append(
            self.engine,
            self.origin,
            encode(self.origin, items, ROW_LIMIT),
            prune_older_than=self.retention if prune else None,
        )
        if prune:
            self._pruned_at = time.monotonic()

    # -- receiving ----------------------------------------------------------------------------

    def _received(self, payload: str) -> None:
        try:
            origin, items = decode(payload)
        except ValueError:
            logger.error("%s: %r", UNDECODABLE, payload[:200])
            self.target.lose_all(UNDECODABLE)
            return
        if origin != self.origin:
            deliver(self.target, items)

    def _lost(self, reason: str) -> None:
        logger.warning("events from other server processes may have been missed: %s", reason)
        self.target.set_outage(reason)

    async def _reconnect_forever(self) -> None:
        assert self._listener is not None
        while True:
            await self._listener.dropped.wait()
            delay = 0.1
            while True:
                try:
                    await self._listener.connect()
                    break
                except Exception:  # noqa: BLE001 — the database may be restarting: try again
                    logger.warning("event relay: reconnecting in %.1f s", delay, exc_info=True)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
            logger.info("event relay: connected again")
            self.target.set_outage(None)

    async def poll_once(self) -> int:
        """Read the rows after the last one seen and deliver the other processes' events; returns
        how many rows were read (SQLite)."""
        rows = await event_log.read_after(self.engine, self.last_id, READ_LIMIT)
        if rows and rows[0][0] > self.last_id + 1:
            logger.warning("events from other server processes were missed: %s", PRUNED)
            self.target.lose_all(PRUNED)
        for row_id, _origin, payload in rows:
            self.last_id = row_id
            self._received(payload)
        return len(rows)

    async def _poll_forever(self) -> None:
        while True:
            try:
                if await self.poll_once() == READ_LIMIT:
                    continue
            except Exception:  # noqa: BLE001 — the cursor stays: nothing is skipped, the next poll retries
                logger.warning("event relay: reading event_log failed", exc_info=True)
            await asyncio.sleep(self.poll)
