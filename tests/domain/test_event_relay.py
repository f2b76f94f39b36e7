"""Events between processes (domain/event_relay.py): two relays on one database stand for two server
processes, each with its own hub.  What one publishes reaches the other's subscribers once; a relay
that may have missed events tells its subscribers (EVENTS_LOST), never skips silently."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain import event_relay
from segmenta.domain.event_relay import DROPPED, PRUNED, SENDER_DROPPED, EventRelay, decode, encode
from segmenta.domain.events import AssignmentChangeEvent, EventHub, EventsLost, RunProgressEvent
from segmenta.storage.models import EventLog

ids = st.none() | st.integers(min_value=1, max_value=2**31 - 1)
words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
changes = st.builds(
    AssignmentChangeEvent,
    customer_id=st.integers(min_value=1, max_value=2**31 - 1),
    team_before_id=ids,
    team_after_id=ids,
    manager_before_id=ids,
    manager_after_id=ids,
    cause=st.sampled_from(["run", "realtime", "manual"]),
    rule=st.none() | words,
    run_id=ids,
    changed_at=st.none() | st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
)
progress = st.builds(
    RunProgressEvent,
    run_id=st.integers(min_value=1, max_value=2**31 - 1),
    step=st.sampled_from(["evaluate", "compare", "assign", "write", "done"]),
    done=st.integers(min_value=0, max_value=10**9),
    total=st.integers(min_value=0, max_value=10**9),
    status=st.sampled_from(["running", "succeeded", "failed"]),
)


@settings(max_examples=150, deadline=None)
@given(items=st.lists(changes | progress | st.just(DROPPED), max_size=80), limit=st.integers(min_value=600, max_value=9000), origin=words)
def test_payloads_hold_every_event_in_order_within_the_limit(items: list[object], limit: int, origin: str) -> None:
    payloads = encode(origin, items, limit)  # type: ignore[arg-type]
    assert all(len(payload.encode()) <= limit for payload in payloads)
    decoded = [decode(payload) for payload in payloads]
    assert all(sender == origin for sender, _ in decoded)
    assert [item for _, batch in decoded for item in batch] == items
    assert (payloads == []) == (items == [])


@pytest.mark.parametrize("payload", ["", "{}", '{"o": "x", "e": [["z"]]}', '{"o": "x", "e": [["p", 1]]}', "[1]"])
def test_a_payload_that_is_not_one_is_refused(payload: str) -> None:
    with pytest.raises(ValueError):
        decode(payload)


async def _started(engine: AsyncEngine, target: EventHub, name: str) -> EventRelay:
    relay = EventRelay(engine, target=target, poll=0.02, origin=name)
    await relay.start()
    return relay


async def _pair(engine: AsyncEngine) -> AsyncIterator[tuple[EventHub, EventHub, EventRelay, EventRelay]]:
    first_hub, second_hub = EventHub(), EventHub()
    first = await _started(engine, first_hub, "first")
    second = await _started(engine, second_hub, "second")
    try:
        yield first_hub, second_hub, first, second
    finally:
        await first.stop()
        await second.stop()


CHANGE = AssignmentChangeEvent(7, 1, 2, None, 3, "manual", None, None, datetime(2026, 1, 2, 3, 4, 5))


async def test_an_event_of_one_process_reaches_the_other_once_and_its_own_once(engine: AsyncEngine) -> None:
    async for first_hub, second_hub, _first, _second in _pair(engine):
        with first_hub.assignments.subscribe() as mine, second_hub.assignments.subscribe() as theirs, \
                second_hub.run_progress.subscribe() as their_runs:
            first_hub.publish(changes=[CHANGE], progress=[RunProgressEvent(9, "done", 1, 1, "succeeded")])
            assert await asyncio.wait_for(theirs.get(), 10) == CHANGE
            assert (await asyncio.wait_for(their_runs.get(), 10)).run_id == 9
            assert await mine.get() == CHANGE
            await asyncio.sleep(0.2)  # nothing comes back to its sender, nothing twice
            assert mine.pending() == 0 and theirs.pending() == 0


async def test_a_reader_that_finds_unread_rows_pruned_tells_its_subscribers(engine: AsyncEngine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("event_log rows carry events on SQLite only")
    reader_hub = EventHub()
    reader = EventRelay(engine, target=reader_hub, origin="reader")
    writer_hub = EventHub()
    writer = await _started(engine, writer_hub, "writer")
    try:
        written = []
        for customer in (0, 1, 2, 3):
            # Wait for this event's own row: the table may hold an earlier test's rows.
            before = await _latest(engine)
            writer_hub.publish(changes=[AssignmentChangeEvent(customer + 1, None, 1, None, None, "manual", None, None, None)])
            await _until(lambda: _latest(engine), before + 1)
            written.append(await _latest(engine))
        reader.last_id = written[0]  # it read the first
        with reader_hub.assignments.subscribe() as subscriber:
            async with engine.begin() as connection:  # the retention passed before the reader read them
                await connection.execute(delete(EventLog).where(EventLog.id <= written[2]))
            assert await reader.poll_once() == 1
            with pytest.raises(EventsLost, match="pruned"):
                await subscriber.get()
            assert subscriber.lost == PRUNED
    finally:
        await writer.stop()


async def test_a_lost_listen_connection_tells_every_subscriber_until_it_is_back(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    async for first_hub, second_hub, _first, second in _pair(engine):
        with second_hub.assignments.subscribe() as present:
            listener = second._listener
            assert listener is not None and listener._connection is not None
            backend = listener._connection.get_server_pid()
            async with engine.connect() as connection:
                await connection.execute(select(func.pg_terminate_backend(backend)))
            with pytest.raises(EventsLost, match="closed"):
                await asyncio.wait_for(present.get(), 10)
        for _ in range(200):
            if second_hub.assignments.outage is None:
                break
            await asyncio.sleep(0.05)
        assert second_hub.assignments.outage is None, "the relay did not connect again"
        with second_hub.assignments.subscribe() as later:
            first_hub.publish(changes=[CHANGE])
            assert await asyncio.wait_for(later.get(), 10) == CHANGE


async def test_events_dropped_while_a_batch_is_being_sent_are_announced(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A drop that happens while the sender waits on an earlier batch is announced by its next batch:
    that batch's success must not erase a drop it never carried."""
    sending, release = asyncio.Event(), asyncio.Event()
    real_send = EventRelay._send

    async def held_send(self: EventRelay, items: object) -> None:
        if not release.is_set():
            sending.set()
            await release.wait()
        await real_send(self, items)  # type: ignore[arg-type]

    monkeypatch.setattr(EventRelay, "_send", held_send)
    monkeypatch.setattr(event_relay, "MAX_PENDING", 2)
    async for first_hub, second_hub, _first, _second in _pair(engine):
        with second_hub.assignments.subscribe() as subscriber:
            first_hub.publish(changes=[CHANGE])  # taken by the sender, which is held while sending it
            await asyncio.wait_for(sending.wait(), 10)
            for _ in range(3):  # two wait for the sender, the third is dropped
                first_hub.publish(changes=[CHANGE])
            release.set()
            with pytest.raises(EventsLost) as lost:
                for _ in range(3):  # the held batch's event may come first; the loss ends the stream
                    assert await asyncio.wait_for(subscriber.get(), 10) == CHANGE
            assert SENDER_DROPPED in lost.value.message


async def _latest(engine: AsyncEngine) -> int:
    return await event_relay.event_log.latest_id(engine)


async def _until(read: object, value: int) -> None:
    for _ in range(200):
        if await read() >= value:  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never reached {value}")


async def test_a_batch_the_database_refuses_is_sent_later_and_dropped_events_are_announced(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Late, not lost: a refused batch is tried again in order.  Past MAX_PENDING the sender drops
    events, and its next batch makes the receivers end their subscriptions with EVENTS_LOST."""
    refusing = asyncio.Event()
    refusing.set()
    real_append, real_notify = event_relay.event_log.append, event_relay.event_log.Listener.notify

    async def append(*args: object, **kwargs: object) -> None:
        if refusing.is_set():
            raise OSError("database is locked")
        await real_append(*args, **kwargs)  # type: ignore[arg-type]

    async def notify(self: object, payloads: object) -> None:
        if refusing.is_set():
            raise OSError("reconnecting")
        await real_notify(self, payloads)  # type: ignore[arg-type]

    monkeypatch.setattr(event_relay.event_log, "append", append)
    monkeypatch.setattr(event_relay.event_log.Listener, "notify", notify)
    monkeypatch.setattr(event_relay, "MAX_PENDING", 2)
    async for first_hub, second_hub, _first, _second in _pair(engine):
        with second_hub.assignments.subscribe() as early:
            first_hub.publish(changes=[CHANGE])
            await asyncio.sleep(0.3)  # tried, refused, waiting to try again
            refusing.clear()
            assert await asyncio.wait_for(early.get(), 10) == CHANGE
        refusing.set()
        with second_hub.assignments.subscribe() as late:
            for _ in range(3):  # the third finds two waiting: dropped
                first_hub.publish(changes=[CHANGE])
            refusing.clear()
            with pytest.raises(EventsLost) as lost:
                await asyncio.wait_for(late.get(), 10)
            assert SENDER_DROPPED in lost.value.message
