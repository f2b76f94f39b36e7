"""In-process publish/subscribe of run progress and assignment changes (docs/graphql.md, 'Subscriptions').

Two topics on the module-level ``hub``:

* ``hub.run_progress`` — :class:`RunProgressEvent` (run id, step, done, total,
  status); domain/routing/runs.py publishes one each time a run reports progress, and a
  last one (step ``done``, the final status) after the run's transaction ended.
* ``hub.assignments`` — :class:`AssignmentChangeEvent`, one per
  ``assignment_history`` row written row by row (real-time routing, manual
  assignment).  The code that writes the rows records them explicitly
  (:func:`record_assignment_changes`) in an outbox of its session, per (nested)
  transaction; they are published only AFTER the session's transaction commits,
  and dropped when it (or the savepoint they were written in) rolls back.  An apply
  run writes its history with one INSERT … SELECT, whose rows are not known in
  Python; its changes are announced by the run's final progress event, and
  readers take the rows from the database (schema/subscriptions.py does).

Every subscriber has a bounded queue; a slow consumer loses its OLDEST events
(and ``dropped`` counts them) rather than slowing the publisher or growing memory.

The hub is per process: with several server processes each sees only the events
of its own process.  A client that must not miss a run's end polls
``evaluationRun(id)``; the subscription is a convenience, not the record.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

# Events a subscriber may have waiting before the oldest are dropped.
QUEUE_SIZE = 1000

_OUTBOX_KEY = "segmenta_assignment_outbox"

Event = TypeVar("Event")


@dataclass(frozen=True)
class RunProgressEvent:
    run_id: int
    step: str  # evaluate | compare | assign | write | done
    done: int
    total: int
    status: str  # running | succeeded | failed

    @property
    def finished(self) -> bool:
        return self.status != "running"


@dataclass(frozen=True)
class AssignmentChangeEvent:
    customer_id: int
    team_before_id: int | None
    team_after_id: int | None
    manager_before_id: int | None
    manager_after_id: int | None
    cause: str  # run | realtime | manual
    rule: str | None
    run_id: int | None
    changed_at: datetime | None

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> AssignmentChangeEvent:
        return cls(
            customer_id=values["customer_id"],
            team_before_id=values.get("team_before_id"),
            team_after_id=values.get("team_after_id"),
            manager_before_id=values.get("manager_before_id"),
            manager_after_id=values.get("manager_after_id"),
            cause=values["cause"],
            rule=values.get("rule"),
            run_id=values.get("run_id"),
            changed_at=values.get("changed_at"),
        )


class Subscriber(Generic[Event]):
    """One consumer's bounded queue; the oldest event goes when it is full."""

    def __init__(self, size: int) -> None:
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=size)
        self.dropped = 0

    def offer(self, item: Event) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(item)

    async def get(self) -> Event:
        return await self._queue.get()

    def pending(self) -> int:
        return self._queue.qsize()

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            yield await self._queue.get()


class Topic(Generic[Event]):
    def __init__(self, size: int = QUEUE_SIZE) -> None:
        self.size = size
        self._subscribers: set[Subscriber[Event]] = set()

    def publish(self, item: Event) -> None:
        for subscriber in list(self._subscribers):
            subscriber.offer(item)

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[Subscriber[Event]]:
        """A subscriber that receives every event published while the block runs."""
        subscriber: Subscriber[Event] = Subscriber(self.size)
        self._subscribers.add(subscriber)
        try:
            yield subscriber
        finally:
            self._subscribers.discard(subscriber)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)


class EventHub:
    def __init__(self, size: int = QUEUE_SIZE) -> None:
        self.run_progress: Topic[RunProgressEvent] = Topic(size)
        self.assignments: Topic[AssignmentChangeEvent] = Topic(size)


hub = EventHub()


def publish_run_progress(run_id: int, step: str, done: int, total: int, status: str = "running") -> None:
    hub.run_progress.publish(RunProgressEvent(run_id, step, done, total, status))


# ---------------------------------------------------------------------------
# Assignment changes: recorded per (nested) transaction, published on commit.
# ---------------------------------------------------------------------------


class _Outbox:
    """One session's recorded assignment changes, by the (nested) transaction that made them.

    Created with the session's first recorded change, it hooks into that session alone (no
    process-wide listener): a root commit publishes everything; a released savepoint's changes
    join its enclosing transaction; whatever is still here when its transaction ends was
    rolled back (or never committed) and is dropped.
    """

    def __init__(self, session: Session) -> None:
        self.pending: dict[SessionTransaction, list[AssignmentChangeEvent]] = {}
        event.listen(session, "after_commit", self._committed)
        event.listen(session, "after_transaction_end", self._ended)

    def _committed(self, session: Session) -> None:
        if not self.pending:
            return
        savepoint = session.get_nested_transaction()
        if savepoint is not None:
            released = self.pending.pop(savepoint, None)
            if released and savepoint.parent is not None:
                self.pending.setdefault(savepoint.parent, []).extend(released)
            return
        committed, self.pending = self.pending, {}
        for changes in committed.values():
            for change in changes:
                hub.assignments.publish(change)

    def _ended(self, session: Session, transaction: SessionTransaction) -> None:
        if not self.pending:
            return
        if transaction.parent is None:
            self.pending = {}
        else:
            self.pending.pop(transaction, None)


def record_assignment_changes(session: AsyncSession | Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Publish these assignment_history rows (as written) once the session's transaction commits.

    Called by the code that writes them (real-time routing, manual assignment); nothing is
    published if the transaction, or the savepoint they were written in, rolls back.
    """
    if not rows:
        return
    sync_session = session.sync_session if isinstance(session, AsyncSession) else session
    transaction = sync_session.get_nested_transaction() or sync_session.get_transaction()
    if transaction is None:
        return
    outbox = sync_session.info.get(_OUTBOX_KEY)
    if outbox is None:
        outbox = sync_session.info[_OUTBOX_KEY] = _Outbox(sync_session)
    outbox.pending.setdefault(transaction, []).extend(AssignmentChangeEvent.from_values(dict(row)) for row in rows)
