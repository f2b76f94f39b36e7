"""In-process publish/subscribe of run progress and assignment changes (docs/graphql.md, 'Subscriptions').

Two topics on the module-level ``hub``:

* ``hub.run_progress`` — :class:`RunProgressEvent` (run id, step, done, total,
  status); domain/routing/runs.py publishes one each time a run reports progress, and a
  last one (step ``done``, the final status) after the run's transaction ended.
* ``hub.assignments`` — :class:`AssignmentChangeEvent`, one per
  ``assignment_history`` row written row by row (real-time routing, manual
  assignment).  They are published only AFTER the session's transaction
  commits: a rolled-back transaction (or savepoint) publishes nothing.  An apply
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
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from segmenta.storage.models import AssignmentHistory

# Events a subscriber may have waiting before the oldest are dropped.
QUEUE_SIZE = 1000

_history_table = AssignmentHistory.__table__
_PENDING_KEY = "segmenta_pending_assignment_events"

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
# Assignment changes: collected per (nested) transaction, published on commit.
# ---------------------------------------------------------------------------


def _pending(session: Session) -> dict[SessionTransaction, list[AssignmentChangeEvent]]:
    pending: dict[SessionTransaction, list[AssignmentChangeEvent]] = session.info.setdefault(_PENDING_KEY, {})
    return pending


def _innermost_transaction(session: Session) -> SessionTransaction | None:
    return session.get_nested_transaction() or session.get_transaction()


@event.listens_for(Session, "do_orm_execute")
def _collect_history_rows(state: ORMExecuteState) -> None:
    """Remember the assignment_history rows an INSERT with explicit values writes."""
    statement = state.statement
    if not state.is_insert or getattr(statement, "table", None) is not _history_table:
        return
    parameters = state.parameters
    rows: list[Any] = parameters if isinstance(parameters, list) else [parameters] if parameters else []
    values = [dict(row) for row in rows if "customer_id" in row]
    if not values:
        return  # INSERT … SELECT (apply runs): announced by the run's final progress event.
    remember_assignment_changes(state.session, values)


def remember_assignment_changes(session: Session, values: list[dict[str, Any]]) -> None:
    """Announce these assignment_history rows when the session's current transaction commits.

    For rows written where the hook above cannot see them (a history INSERT inside a
    larger statement: domain/routing/realtime_create.py on PostgreSQL).
    """
    transaction = _innermost_transaction(session)
    if transaction is None:
        return
    _pending(session).setdefault(transaction, []).extend(AssignmentChangeEvent.from_values(v) for v in values)


@event.listens_for(Session, "after_commit")
def _publish_committed(session: Session) -> None:
    """Root commit: publish everything.  Savepoint release: its events now belong to the enclosing transaction."""
    pending = session.info.get(_PENDING_KEY)
    if not pending:
        return
    savepoint = session.get_nested_transaction()
    if savepoint is not None:
        events = pending.pop(savepoint, None)
        if events and savepoint.parent is not None:
            pending.setdefault(savepoint.parent, []).extend(events)
        return
    session.info.pop(_PENDING_KEY, None)
    for events in pending.values():
        for item in events:
            hub.assignments.publish(item)


@event.listens_for(Session, "after_transaction_end")
def _forget_uncommitted(session: Session, transaction: SessionTransaction) -> None:
    """Whatever is still pending when its transaction ends was rolled back (or never committed)."""
    pending = session.info.get(_PENDING_KEY)
    if not pending:
        return
    if transaction.parent is None:
        session.info.pop(_PENDING_KEY, None)
    else:
        pending.pop(transaction, None)
