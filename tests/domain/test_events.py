"""The event hub: bounded per-subscriber queues, and assignment changes published only after commit."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from segmenta.domain.customers import profiles
from segmenta.domain.events import (
    FELL_BEHIND,
    AssignmentChangeEvent,
    EventHub,
    EventsLost,
    RunProgressEvent,
    Subscriber,
    Topic,
    hub,
)
from segmenta.domain.routing import manual_assignment, runs
from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from segmenta.storage.engine import session_factory
from tests.domain.routing_support import add_customer, add_employee, add_team

RULES = """
small: size = small -> team standard
rest: true -> team general
"""


def drain(subscriber: Subscriber[AssignmentChangeEvent]) -> list[AssignmentChangeEvent]:
    items = []
    while subscriber.pending():
        items.append(subscriber._queue.get_nowait())
    return items


@settings(max_examples=100, deadline=None)
@given(size=st.integers(min_value=1, max_value=20), count=st.integers(min_value=0, max_value=60))
def test_a_subscriber_that_falls_behind_is_told_never_skipped(size: int, count: int) -> None:
    """Up to its queue's size it gets every event in order; one more and it gets EventsLost, at once
    and on every later get, instead of a silent gap."""
    topic: Topic[int] = Topic(size)

    async def received(subscriber: Subscriber[int]) -> list[int]:
        return [await subscriber.get() for _ in range(subscriber.pending())]

    with topic.subscribe() as subscriber:
        for number in range(count):
            topic.publish(number)
        if count <= size:
            assert subscriber.lost is None
            assert asyncio.run(received(subscriber)) == list(range(count))
        else:
            assert subscriber.lost == FELL_BEHIND and subscriber.pending() == 0
            for _ in range(2):
                with pytest.raises(EventsLost) as lost:
                    asyncio.run(subscriber.get())
                assert lost.value.code == "EVENTS_LOST" and FELL_BEHIND in lost.value.message
    assert topic.subscriber_count == 0


async def test_losing_wakes_a_waiting_subscriber_and_an_outage_tells_new_ones() -> None:
    hub_under_test = EventHub()
    with hub_under_test.assignments.subscribe() as waiting:
        getter = asyncio.create_task(waiting.get())
        await asyncio.sleep(0)
        hub_under_test.set_outage("the relay lost its connection")
        with pytest.raises(EventsLost, match="the relay lost its connection"):
            await asyncio.wait_for(getter, 5)
        with hub_under_test.run_progress.subscribe() as late:
            assert late.lost == "the relay lost its connection"
    hub_under_test.set_outage(None)
    with hub_under_test.run_progress.subscribe() as after:
        hub_under_test.deliver(progress=[RunProgressEvent(1, "done", 1, 1, "succeeded")])
        assert (await after.get()).run_id == 1


def test_every_subscriber_gets_every_event_and_leaving_stops_delivery() -> None:
    topic: Topic[str] = Topic(10)
    with topic.subscribe() as first:
        with topic.subscribe() as second:
            topic.publish("a")
        topic.publish("b")
    topic.publish("c")
    assert [first._queue.get_nowait() for _ in range(first.pending())] == ["a", "b"]
    assert [second._queue.get_nowait() for _ in range(second.pending())] == ["a"]


async def _routing_world(session: AsyncSession) -> dict[str, int]:
    ann = await add_employee(session, "Ann")
    bob = await add_employee(session, "Bob")
    standard = await add_team(session, "standard", members=[ann])
    general = await add_team(session, "general", members=[bob])
    ruleset = await save_ruleset(session, "events", RULES)
    await activate_ruleset(session, ruleset.id)
    await session.commit()
    return {"ann": ann.id, "bob": bob.id, "standard": standard.id, "general": general.id, "ruleset": ruleset.id}


async def test_realtime_change_is_published_after_commit_only(session: AsyncSession) -> None:
    world = await _routing_world(session)
    with hub.assignments.subscribe() as subscriber:
        customer = await profiles.create_customer(session, {"code": "c1", "name": "C1", "size": "small"})
        await session.flush()
        assert drain(subscriber) == []  # written, not yet committed
        await session.commit()
        published = drain(subscriber)
    assert [(e.customer_id, e.team_before_id, e.team_after_id, e.manager_after_id, e.cause, e.rule) for e in published] == [
        (customer.id, None, world["standard"], world["ann"], "realtime", "small")
    ]


async def test_rolled_back_changes_are_never_published(session: AsyncSession) -> None:
    await _routing_world(session)
    with hub.assignments.subscribe() as subscriber:
        await profiles.create_customer(session, {"code": "c1", "name": "C1", "size": "small"})
        await session.rollback()
        await session.commit()  # an empty commit after the rollback must not resurrect them
        assert drain(subscriber) == []


async def test_a_rolled_back_savepoint_publishes_nothing_a_released_one_does(session: AsyncSession) -> None:
    world = await _routing_world(session)
    first = await add_customer(session, "c1", size="small")
    second = await add_customer(session, "c2", size="small")
    await session.commit()
    with hub.assignments.subscribe() as subscriber:
        with pytest.raises(RuntimeError):
            async with session.begin_nested():
                await manual_assignment.assign_manager(session, [first.id], world["bob"])
                raise RuntimeError("undo")
        async with session.begin_nested():
            await manual_assignment.assign_manager(session, [second.id], world["bob"])
        assert drain(subscriber) == []
        await session.commit()
        published = drain(subscriber)
    assert [(e.customer_id, e.manager_after_id, e.team_after_id, e.cause) for e in published] == [
        (second.id, world["bob"], world["general"], "manual")
    ]


async def test_run_progress_is_published_and_ends_with_the_final_status(session: AsyncSession) -> None:
    await _routing_world(session)
    await add_customer(session, "c1", size="small")
    await session.commit()
    with hub.run_progress.subscribe() as subscriber:
        run = await runs.preview_ruleset(session, source=RULES)
        events: list[RunProgressEvent] = [subscriber._queue.get_nowait() for _ in range(subscriber.pending())]
    assert {event.run_id for event in events} == {run.id}
    assert [event.step for event in events][0] == "evaluate"
    assert all(event.status == "running" for event in events[:-1])
    assert (events[-1].step, events[-1].status) == ("done", "succeeded")


async def test_a_committed_change_is_published_once(session: AsyncSession) -> None:
    world = await _routing_world(session)
    with hub.assignments.subscribe() as subscriber:
        customer = await profiles.create_customer(session, {"code": "c1", "name": "C1", "size": "small"})
        await session.commit()
        await session.commit()  # a later, empty commit publishes nothing again
        await profiles.update_customer(session, customer.id, {"name": "C1 renamed"})  # stays: no change
        await session.commit()
        published = drain(subscriber)
    assert [(e.customer_id, e.team_after_id) for e in published] == [(customer.id, world["standard"])]


async def test_a_rolled_back_manual_assignment_publishes_nothing(session: AsyncSession) -> None:
    world = await _routing_world(session)
    customer_id = (await add_customer(session, "c1", size="small")).id
    await session.commit()
    with hub.assignments.subscribe() as subscriber:
        await manual_assignment.assign_manager(session, [customer_id], world["bob"])
        await session.rollback()
        await session.commit()
        assert drain(subscriber) == []
        await manual_assignment.assign_manager(session, [customer_id], world["bob"])
        await session.commit()
        assert [(e.customer_id, e.manager_after_id, e.cause) for e in drain(subscriber)] == [
            (customer_id, world["bob"], "manual")
        ]


async def test_only_the_session_that_made_a_change_publishes_it(session: AsyncSession, engine: AsyncEngine) -> None:
    # The outbox belongs to its session: another session's commit does not publish it.
    await _routing_world(session)
    with hub.assignments.subscribe() as subscriber:
        await profiles.create_customer(session, {"code": "c1", "name": "C1", "size": "small"})
        async with session_factory(engine)() as other:
            await other.commit()
        assert drain(subscriber) == []
        await session.commit()
        assert len(drain(subscriber)) == 1
