"""domain.customers.activity: purchases, interactions, feedback and the metric columns they maintain."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from segmenta.domain.customers.activity import (
    record_interaction,
    record_purchase,
    submit_feedback,
    update_feedback_status,
)
from segmenta.domain.customers.profiles import create_customer
from segmenta.domain.errors import Busy, NotFound, UserError
from segmenta.storage.models import Customer, Employee, Feedback, Interaction, Purchase
from tests.domain.helpers import database_snapshot

JAN = datetime(2024, 1, 10, 9, 30)
MAR = datetime(2024, 3, 5, 18, 0)
FEB = datetime(2024, 2, 1)


async def _customer(session: AsyncSession, code: str = "C1") -> Customer:
    return await create_customer(session, {"code": code, "name": f"Customer {code}"})


async def _employee(session: AsyncSession, email: str = "agent@example.com") -> Employee:
    employee = Employee(name="Agent", email=email)
    session.add(employee)
    await session.flush()
    return employee


async def _reloaded(session: AsyncSession, customer_id: int) -> Customer:
    """The customer as stored (bypassing the identity map)."""
    return (
        await session.execute(
            select(Customer).where(Customer.id == customer_id).execution_options(populate_existing=True)
        )
    ).scalar_one()


async def test_purchases_maintain_count_total_and_date_range(session: AsyncSession) -> None:
    customer = await _customer(session)
    purchase = await record_purchase(
        session, customer_id=customer.id, amount=100, category=" tools ", product="drill", channel="web", purchased_at=FEB
    )
    assert (purchase.id, purchase.amount, purchase.category, purchase.purchased_at) == (purchase.id, 100.0, "tools", FEB)
    # The loaded object is updated in place from RETURNING.
    assert (customer.purchase_count, customer.total_spent) == (1, 100.0)
    await record_purchase(session, customer_id=customer.id, amount=20.5, purchased_at=MAR)
    await record_purchase(session, customer_id=customer.id, amount=0, purchased_at=JAN)
    await session.commit()

    stored = await _reloaded(session, customer.id)
    assert stored.purchase_count == 3
    assert stored.total_spent == pytest.approx(120.5)
    assert (stored.first_purchase_at, stored.last_purchase_at) == (JAN, MAR)


async def test_purchase_defaults_to_now_and_accepts_aware_times(session: AsyncSession) -> None:
    customer = await _customer(session)
    before = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=5)
    now_purchase = await record_purchase(session, customer_id=customer.id, amount=1)
    assert now_purchase.purchased_at >= before
    aware = datetime(2024, 6, 1, 10, 0, tzinfo=timezone(timedelta(hours=8)))
    shifted = await record_purchase(session, customer_id=customer.id, amount=1, purchased_at=aware)
    assert shifted.purchased_at == datetime(2024, 6, 1, 2, 0)
    assert customer.first_purchase_at == datetime(2024, 6, 1, 2, 0)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"amount": -0.01}, "amount"),
        ({"amount": None}, "amount"),
        ({"amount": "12"}, "amount"),
        ({"amount": float("inf")}, "amount"),
        ({"amount": 1, "category": "c" * 101}, "category"),
        ({"amount": 1, "product": "p" * 201}, "product"),
        ({"amount": 1, "channel": 5}, "channel"),
        ({"amount": 1, "purchased_at": "soon"}, "purchased_at"),
        ({"amount": 1, "customer_id": 999999}, "customer_id"),
        ({"amount": 1, "customer_id": "1"}, "customer_id"),
    ],
)
async def test_record_purchase_rejects_bad_input_and_writes_nothing(
    session: AsyncSession, arguments: dict[str, Any], field: str
) -> None:
    customer = await _customer(session)
    before = await database_snapshot(session)
    with pytest.raises(UserError) as raised:
        await record_purchase(session, **{"customer_id": customer.id, **arguments})
    assert raised.value.field == field
    assert await database_snapshot(session) == before
    assert customer.purchase_count == 0


async def test_unknown_customer_is_not_found(session: AsyncSession) -> None:
    with pytest.raises(NotFound) as raised:
        await record_interaction(session, customer_id=987654, kind="call")
    assert raised.value.code == "not_found" and raised.value.field == "customer_id"
    with pytest.raises(NotFound):
        await submit_feedback(session, customer_id=987654, kind="praise")
    assert (await session.execute(select(Interaction))).first() is None
    assert (await session.execute(select(Feedback))).first() is None


async def test_interactions_maintain_count_and_last_contact(session: AsyncSession) -> None:
    customer = await _customer(session)
    employee = await _employee(session)
    interaction = await record_interaction(
        session, customer_id=customer.id, employee_id=employee.id, kind="Visit", occurred_at=MAR, summary=" met "
    )
    assert (interaction.kind, interaction.summary, interaction.employee_id) == ("visit", "met", employee.id)
    await record_interaction(session, customer_id=customer.id, kind="call", occurred_at=JAN)
    await session.commit()
    stored = await _reloaded(session, customer.id)
    assert (stored.interaction_count, stored.last_contact_at) == (2, MAR)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"kind": "telepathy"}, "kind"),
        ({"kind": None}, "kind"),
        ({"kind": "call", "employee_id": 999999}, "employee_id"),
        ({"kind": "call", "occurred_at": 12}, "occurred_at"),
        ({"kind": "call", "summary": ["x"]}, "summary"),
    ],
)
async def test_record_interaction_rejects_bad_input_and_writes_nothing(
    session: AsyncSession, arguments: dict[str, Any], field: str
) -> None:
    customer = await _customer(session)
    before = await database_snapshot(session)
    with pytest.raises(UserError) as raised:
        await record_interaction(session, customer_id=customer.id, **arguments)
    assert raised.value.field == field
    assert await database_snapshot(session) == before


async def test_feedback_kinds_maintain_their_metrics(session: AsyncSession) -> None:
    customer = await _customer(session)
    survey = await submit_feedback(session, customer_id=customer.id, kind="survey", score=4, comment="good")
    await submit_feedback(session, customer_id=customer.id, kind="survey", score=1)
    await submit_feedback(session, customer_id=customer.id, kind="nps", score=9)
    await submit_feedback(session, customer_id=customer.id, kind="nps", score=0.0)
    complaint = await submit_feedback(session, customer_id=customer.id, kind="COMPLAINT", comment="late")
    suggestion = await submit_feedback(session, customer_id=customer.id, kind="suggestion", channel="app")
    await submit_feedback(session, customer_id=customer.id, kind="praise")
    await session.commit()

    assert (survey.status, survey.score, survey.resolved_at) == ("closed", 4.0, None)
    assert (complaint.kind, complaint.status, complaint.score) == ("complaint", "open", None)
    assert suggestion.status == "closed"
    stored = await _reloaded(session, customer.id)
    assert (stored.survey_count, stored.survey_sum) == (2, 5.0)
    assert (stored.nps_count, stored.nps_sum) == (2, 9.0)
    assert (stored.feedback_count, stored.complaint_count, stored.open_complaints) == (7, 1, 1)


@pytest.mark.parametrize(
    ("arguments", "field", "code"),
    [
        ({"kind": "rant"}, "kind", "invalid"),
        ({"kind": "survey"}, "score", "required"),
        ({"kind": "survey", "score": 0}, "score", "out_of_range"),
        ({"kind": "survey", "score": 6}, "score", "out_of_range"),
        ({"kind": "survey", "score": 3.5}, "score", "invalid"),
        ({"kind": "nps"}, "score", "required"),
        ({"kind": "nps", "score": -1}, "score", "out_of_range"),
        ({"kind": "nps", "score": 11}, "score", "out_of_range"),
        ({"kind": "complaint", "score": 2}, "score", "invalid"),
        ({"kind": "praise", "score": 5}, "score", "invalid"),
        ({"kind": "praise", "channel": "c" * 51}, "channel", "too_long"),
        ({"kind": "praise", "employee_id": 999999}, "employee_id", "not_found"),
        ({"kind": "praise", "created_at": "then"}, "created_at", "invalid"),
    ],
)
async def test_submit_feedback_rejects_bad_input_and_writes_nothing(
    session: AsyncSession, arguments: dict[str, Any], field: str, code: str
) -> None:
    customer = await _customer(session)
    before = await database_snapshot(session)
    with pytest.raises(UserError) as raised:
        await submit_feedback(session, customer_id=customer.id, **arguments)
    assert (raised.value.field, raised.value.code) == (field, code)
    assert await database_snapshot(session) == before


async def test_complaint_status_transitions_keep_open_complaints(session: AsyncSession) -> None:
    customer = await _customer(session)
    complaint = await submit_feedback(session, customer_id=customer.id, kind="complaint")
    assert customer.open_complaints == 1

    moved = await update_feedback_status(session, complaint.id, "in_progress", note="calling back")
    assert moved is complaint
    assert (complaint.status, complaint.status_note, complaint.resolved_at) == ("in_progress", "calling back", None)
    assert customer.open_complaints == 1

    await update_feedback_status(session, complaint.id, "resolved")
    assert complaint.status == "resolved" and complaint.resolved_at is not None
    assert complaint.status_note == "calling back"  # no note given: the old one stays
    assert customer.open_complaints == 0
    resolved_at = complaint.resolved_at

    await update_feedback_status(session, complaint.id, "closed", note="confirmed")
    assert (complaint.status, complaint.resolved_at) == ("closed", resolved_at)
    assert customer.open_complaints == 0

    await update_feedback_status(session, complaint.id, "open", note="came back")
    assert (complaint.status, complaint.resolved_at) == ("open", None)
    assert customer.open_complaints == 1

    await update_feedback_status(session, complaint.id, "open")  # same status: harmless no-op
    assert customer.open_complaints == 1
    await session.commit()
    stored = await _reloaded(session, customer.id)
    assert (stored.open_complaints, stored.complaint_count) == (1, 1)


async def test_non_complaint_status_changes_leave_open_complaints(session: AsyncSession) -> None:
    customer = await _customer(session)
    suggestion = await submit_feedback(session, customer_id=customer.id, kind="suggestion")
    await update_feedback_status(session, suggestion.id, "open")
    assert suggestion.status == "open" and customer.open_complaints == 0
    await update_feedback_status(session, suggestion.id, "resolved")
    assert suggestion.resolved_at is not None and customer.open_complaints == 0


@pytest.mark.parametrize(
    ("start", "target"),
    [("resolved", "in_progress"), ("closed", "resolved"), ("closed", "in_progress")],
)
async def test_forbidden_transitions_write_nothing(session: AsyncSession, start: str, target: str) -> None:
    customer = await _customer(session)
    complaint = await submit_feedback(session, customer_id=customer.id, kind="complaint")
    if start == "closed":
        await update_feedback_status(session, complaint.id, "closed")
    else:
        await update_feedback_status(session, complaint.id, start)
    before = await database_snapshot(session)
    with pytest.raises(UserError) as raised:
        await update_feedback_status(session, complaint.id, target, note="nope")
    assert (raised.value.field, raised.value.code) == ("status", "invalid_transition")
    assert await database_snapshot(session) == before


async def test_update_feedback_status_bad_input(session: AsyncSession) -> None:
    customer = await _customer(session)
    complaint = await submit_feedback(session, customer_id=customer.id, kind="complaint")
    before = await database_snapshot(session)
    with pytest.raises(UserError) as raised:
        await update_feedback_status(session, complaint.id, "done")
    assert raised.value.field == "status"
    with pytest.raises(NotFound) as missing:
        await update_feedback_status(session, 999999, "closed")
    assert missing.value.field == "id"
    assert await database_snapshot(session) == before


async def test_concurrent_purchases_lose_no_update(engine: Any) -> None:
    """Ten sessions buying for the same customer at once: SQL arithmetic keeps every amount."""
    factory = async_sessionmaker(engine, expire_on_commit=False)
    async with factory() as setup:
        customer = await _customer(setup, "CONC")
        await setup.commit()

    async def buy(amount: float) -> None:
        async with factory() as writer:
            if engine.dialect.name == "postgresql":
                # A stale copy, as a busy server would hold.  (SQLite cannot upgrade a read
                # transaction to a write while another writer commits: it reports "locked".)
                await writer.get(Customer, customer.id)
            await record_purchase(writer, customer_id=customer.id, amount=amount)
            await asyncio.sleep(0)  # let the other writers reach the row before this one commits
            await writer.commit()

    await asyncio.gather(*(buy(float(amount)) for amount in range(1, 11)))
    async with factory() as check:
        stored = await check.get(Customer, customer.id)
        assert stored is not None
        assert (stored.purchase_count, stored.total_spent) == (10, 55.0)


async def test_purchase_rows_are_linked(session: AsyncSession) -> None:
    customer = await _customer(session)
    await record_purchase(session, customer_id=customer.id, amount=3, category="a")
    rows = (await session.execute(select(Purchase.customer_id, Purchase.amount))).all()
    assert [tuple(row) for row in rows] == [(customer.id, 3.0)]


async def test_concurrent_closes_of_one_complaint_count_it_once(engine: Any) -> None:
    """The feedback row is locked FOR UPDATE: two writers closing the same complaint decrement once."""
    factory = async_sessionmaker(engine, expire_on_commit=False)
    async with factory() as setup:
        customer = await _customer(setup, "RACE")
        complaints = [await submit_feedback(setup, customer_id=customer.id, kind="complaint") for _ in range(2)]
        await setup.commit()

    async def close(status: str) -> None:
        async with factory() as writer:
            await update_feedback_status(writer, complaints[0].id, status)
            await asyncio.sleep(0)
            await writer.commit()

    outcomes = await asyncio.gather(close("closed"), close("closed"), return_exceptions=True)
    failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    if engine.dialect.name == "postgresql":
        assert failures == []
    else:
        # SQLite refuses the second writer outright ("database is locked", a retryable Busy); it wrote nothing.
        assert all(isinstance(failure, Busy) for failure in failures)
    async with factory() as check:
        stored = await check.get(Customer, customer.id)
        assert stored is not None and stored.open_complaints == 1
