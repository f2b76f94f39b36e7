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

Every subscriber has a bounded queue.  A subscriber that falls behind (its queue is full when
an event comes) is not slowed down to, nor silently skipped: it is marked lost, its queue is
emptied, and its next ``get`` raises :class:`EventsLost` (code ``EVENTS_LOST``).  The same
happens to every subscriber of the process when the transport between processes may have missed
events (``EventHub.lose_all``).  The subscription then ends with that error; the client
re-subscribes and re-reads what it shows from the database, which stays the record.

Between processes (several workers, several servers): every event published here is also handed
to ``hub.forward`` when a relay is running (domain/event_relay.py), which sends it to the other
processes; what they send arrives through ``EventHub.deliver`` and reaches local subscribers
only (never forwarded again).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from segmenta.domain.errors import Unavailable

# Events a subscriber may have waiting before the oldest are dropped.
QUEUE_SIZE = 1000

_OUTBOX_KEY = "segmenta_assignment_outbox"

Event = TypeVar("Event")

FELL_BEHIND = "this subscription fell behind: more events came than it could take in time"


class EventsLost(Unavailable):
    """Some events never reached this subscriber: re-subscribe, and re-read the state it shows."""

    code = "EVENTS_LOST"


class _Lost:
    """Queued in place of events once a subscriber has lost some: wakes a waiting get()."""


_LOST = _Lost()


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
    """One consumer's bounded queue; when it overflows the consumer is told (EventsLost), never skipped."""

    def __init__(self, size: int) -> None:
        self._queue: asyncio.Queue[Event | _Lost] = asyncio.Queue(maxsize=size)
        self.lost: str | None = None  # why events were lost, once they were

    def offer(self, item: Event) -> None:
        if self.lost is not None:
            return
        if self._queue.full():
            self.lose(FELL_BEHIND)
            return
        self._queue.put_nowait(item)

    def lose(self, reason: str) -> None:
        """Drop what is queued; the next get() raises EventsLost(reason)."""
        if self.lost is not None:
            return
        self.lost = reason
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(_LOST)

    async def get(self) -> Event:
        item = await self._queue.get()
        if isinstance(item, _Lost):
            self._queue.put_nowait(item)  # every later get() raises too
            raise EventsLost(f"events were lost: {self.lost}; subscribe again and re-read the current state")
        return item

    def pending(self) -> int:
        return 0 if self.lost is not None else self._queue.qsize()

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            yield await self.get()


class Topic(Generic[Event]):
    def __init__(self, size: int = QUEUE_SIZE) -> None:
        self.size = size
        self._subscribers: set[Subscriber[Event]] = set()
        # Set while events of other processes cannot arrive: a new subscriber is told at once.
        self.outage: str | None = None

    def publish(self, item: Event) -> None:
        for subscriber in list(self._subscribers):
            subscriber.offer(item)

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[Subscriber[Event]]:
        """A subscriber that receives every event published while the block runs."""
        subscriber: Subscriber[Event] = Subscriber(self.size)
        if self.outage is not None:
            subscriber.lose(self.outage)
        self._subscribers.add(subscriber)
        try:
            yield subscriber
        finally:
            self._subscribers.discard(subscriber)

    def lose_all(self, reason: str) -> None:
        for subscriber in list(self._subscribers):
            subscriber.lose(reason)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)


# Hands this process's events to the other processes (domain/event_relay.py sets it while it runs).
Forward = Callable[[Sequence[RunProgressEvent], Sequence[AssignmentChangeEvent]], None]


class EventHub:
    def __init__(self, size: int = QUEUE_SIZE) -> None:
        self.run_progress: Topic[RunProgressEvent] = Topic(size)
        self.assignments: Topic[AssignmentChangeEvent] = Topic(size)
        self.forward: Forward | None = None

    def publish(
        self, progress: Sequence[RunProgressEvent] = (), changes: Sequence[AssignmentChangeEvent] = ()
    ) -> None:
        """Events of this process: to its subscribers, and to the other processes' through the relay."""
        self.deliver(progress, changes)
        if self.forward is not None and (progress or changes):
            self.forward(progress, changes)

    def deliver(
        self, progress: Sequence[RunProgressEvent] = (), changes: Sequence[AssignmentChangeEvent] = ()
    ) -> None:
        """Events to this process's subscribers only (those of other processes arrive here)."""
        for item in progress:
            self.run_progress.publish(item)
        for change in changes:
            self.assignments.publish(change)

    def lose_all(self, reason: str) -> None:
        """Tell every subscriber of this process that events may have been missed."""
        self.run_progress.lose_all(reason)
        self.assignments.lose_all(reason)

    def set_outage(self, reason: str | None) -> None:
        """While `reason` is set, events of other processes cannot arrive: every subscriber, present
        or new, is told; None when they can again."""
        self.run_progress.outage = self.assignments.outage = reason
        if reason is not None:
            self.lose_all(reason)


hub = EventHub()


def publish_run_progress(run_id: int, step: str, done: int, total: int, status: str = "running") -> None:
    hub.publish(progress=[RunProgressEvent(run_id, step, done, total, status)])


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
        hub.publish(changes=[change for changes in committed.values() for change in changes])

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
