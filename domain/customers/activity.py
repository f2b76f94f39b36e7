"""Purchases, interactions and feedback, each keeping the customer's metric columns in step.

The metric columns change with one ``UPDATE customers SET col = col + :delta …`` per
event (SQL arithmetic and CASE for earliest/latest dates), issued in the caller's
transaction: two concurrent writers never lose each other's update, and the row
lock it takes orders writers to the same customer.  That UPDATE is also the first
statement, so an unknown customer is reported before anything is written.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Float, Integer, case, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from segmenta.domain import validation as v
from segmenta.domain.customers.profiles import reevaluate
from segmenta.domain.customers.vocabulary import (
    FEEDBACK_KINDS,
    FEEDBACK_STATUSES,
    INTERACTION_KINDS,
    OPEN_STATUSES,
    SCORE_RANGES,
    STATUS_TRANSITIONS,
    initial_status,
)
from segmenta.domain.errors import NotFound, UserError
from segmenta.storage.models import Customer, Employee, Feedback, Interaction, Purchase, utcnow
from segmenta.storage.money_type import Money

_customers = Customer.__table__


async def _ensure_employee(session: AsyncSession, employee_id: Any) -> int | None:
    if employee_id is None:
        return None
    checked = v.identifier(employee_id, "employee_id")
    if (await session.execute(select(Employee.id).where(Employee.id == checked))).first() is None:
        raise NotFound("employee", employee_id, field="employee_id")
    return checked


async def bump_metrics(
    session: AsyncSession,
    customer_id: int,
    changes: dict[str, ColumnElement[Any]],
    *,
    unless: tuple[ColumnElement[bool], UserError] | None = None,
) -> None:
    """Apply SQL-expression `changes` to one customer's row; NotFound when there is no such customer.

    With `unless` (condition, error), a row for which the condition holds is left
    alone and the error raised: the test is part of the UPDATE, so two concurrent
    writers cannot both pass it.  The new values come back with RETURNING and are
    written into an already loaded Customer object, so callers holding it see
    current metrics without a reload.
    """
    statement = update(_customers).where(_customers.c.id == customer_id)
    if unless is not None:
        statement = statement.where(~unless[0])
    statement = statement.values(changes).returning(*(_customers.c[name] for name in changes))
    row = (await session.execute(statement)).first()
    if row is None:
        if unless is not None and await _exists(session, customer_id):
            raise unless[1]
        raise NotFound("customer", customer_id, field="customer_id")
    loaded = session.sync_session.identity_map.get(identity_key(Customer, customer_id))
    if loaded is not None:
        for name, value in row._mapping.items():
            set_committed_value(loaded, name, value)


async def _exists(session: AsyncSession, customer_id: int) -> bool:
    return (await session.execute(select(_customers.c.id).where(_customers.c.id == customer_id))).first() is not None


def _earliest(column: ColumnElement[Any], stamp: datetime) -> ColumnElement[Any]:
    at = literal(stamp, DateTime)
    return case((or_(column.is_(None), column > at), at), else_=column)


def _latest(column: ColumnElement[Any], stamp: datetime) -> ColumnElement[Any]:
    at = literal(stamp, DateTime)
    return case((or_(column.is_(None), column < at), at), else_=column)


def _plus(column: str, amount: float | int | Decimal) -> ColumnElement[Any]:
    kind = Money() if isinstance(amount, Decimal) else Float() if isinstance(amount, float) else Integer()
    return _customers.c[column] + literal(amount, kind)


def _check_customer_id(customer_id: Any) -> int:
    return v.identifier(customer_id, "customer_id")


async def record_purchase(
    session: AsyncSession,
    *,
    customer_id: int,
    amount: Decimal | float | int | str,
    category: str | None = None,
    product: str | None = None,
    channel: str | None = None,
    purchased_at: datetime | None = None,
) -> Purchase:
    checked_customer = _check_customer_id(customer_id)
    checked_amount = v.money(amount, "amount")
    category = v.text(category, "category", max_length=v.column_length(Purchase, "category"))
    product = v.text(product, "product", max_length=v.column_length(Purchase, "product"))
    channel = v.text(channel, "channel", max_length=v.column_length(Purchase, "channel"))
    at = v.timestamp(purchased_at, "purchased_at") or utcnow()

    over_limit = UserError(
        f"this purchase would take the customer's total spent past {v.MAX_TOTAL_SPENT:,}",
        field="amount",
        code="out_of_range",
    )
    await bump_metrics(
        session,
        checked_customer,
        {
            "purchase_count": _plus("purchase_count", 1),
            "total_spent": _plus("total_spent", checked_amount),
            "first_purchase_at": _earliest(_customers.c.first_purchase_at, at),
            "last_purchase_at": _latest(_customers.c.last_purchase_at, at),
        },
        unless=(
            func.coalesce(_customers.c.total_spent, 0) + literal(checked_amount, Money())
            > literal(Decimal(v.MAX_TOTAL_SPENT), Money()),
            over_limit,
        ),
    )
    purchase = Purchase(
        customer_id=checked_customer,
        amount=checked_amount,
        category=category,
        product=product,
        channel=channel,
        purchased_at=at,
    )
    session.add(purchase)
    await session.flush()
    await reevaluate(session, checked_customer)
    return purchase


async def record_interaction(
    session: AsyncSession,
    *,
    customer_id: int,
    employee_id: int | None = None,
    kind: str,
    occurred_at: datetime | None = None,
    summary: str | None = None,
) -> Interaction:
    checked_customer = _check_customer_id(customer_id)
    checked_kind = v.required_word(kind, "kind", INTERACTION_KINDS)
    at = v.timestamp(occurred_at, "occurred_at") or utcnow()
    summary = v.text(summary, "summary", max_length=None)
    checked_employee = await _ensure_employee(session, employee_id)

    await bump_metrics(
        session,
        checked_customer,
        {
            "interaction_count": _plus("interaction_count", 1),
            "last_contact_at": _latest(_customers.c.last_contact_at, at),
        },
    )
    interaction = Interaction(
        customer_id=checked_customer, employee_id=checked_employee, kind=checked_kind, occurred_at=at, summary=summary
    )
    session.add(interaction)
    await session.flush()
    await reevaluate(session, checked_customer)
    return interaction


def _check_score(kind: str, score: Any) -> float | None:
    bounds = SCORE_RANGES.get(kind)
    if bounds is None:
        if score is not None:
            raise UserError(f"{kind} feedback takes no score", field="score")
        return None
    low, high = bounds
    if score is None:
        raise UserError(f"{kind} feedback needs a score from {low} to {high}", field="score", code="required")
    return v.number(score, "score", minimum=low, maximum=high, whole=True)


async def submit_feedback(
    session: AsyncSession,
    *,
    customer_id: int,
    employee_id: int | None = None,
    kind: str,
    score: float | None = None,
    comment: str | None = None,
    channel: str | None = None,
    created_at: datetime | None = None,
) -> Feedback:
    """Record feedback; `created_at` (default now) lets imports and seeds keep history."""
    checked_customer = _check_customer_id(customer_id)
    checked_kind = v.required_word(kind, "kind", FEEDBACK_KINDS)
    checked_score = _check_score(checked_kind, score)
    comment = v.text(comment, "comment", max_length=None)
    channel = v.text(channel, "channel", max_length=v.column_length(Feedback, "channel"))
    at = v.timestamp(created_at, "created_at") or utcnow()
    checked_employee = await _ensure_employee(session, employee_id)
    status = initial_status(checked_kind)

    changes: dict[str, ColumnElement[Any]] = {"feedback_count": _plus("feedback_count", 1)}
    if checked_kind == "survey" and checked_score is not None:
        changes["survey_count"] = _plus("survey_count", 1)
        changes["survey_sum"] = _plus("survey_sum", checked_score)
    elif checked_kind == "nps" and checked_score is not None:
        changes["nps_count"] = _plus("nps_count", 1)
        changes["nps_sum"] = _plus("nps_sum", checked_score)
    elif checked_kind == "complaint":
        changes["complaint_count"] = _plus("complaint_count", 1)
        if status in OPEN_STATUSES:
            changes["open_complaints"] = _plus("open_complaints", 1)
    await bump_metrics(session, checked_customer, changes)

    feedback = Feedback(
        customer_id=checked_customer,
        employee_id=checked_employee,
        kind=checked_kind,
        score=checked_score,
        comment=comment,
        channel=channel,
        status=status,
        created_at=at,
    )
    session.add(feedback)
    await session.flush()
    await reevaluate(session, checked_customer)
    return feedback


async def update_feedback_status(
    session: AsyncSession, feedback_id: int, status: str, note: str | None = None
) -> Feedback:
    """Move feedback to `status`, keeping `resolved_at` and the customer's open_complaints in step.

    The feedback row is read FOR UPDATE, so two concurrent moves of the same
    complaint cannot both count it as closed.
    """
    checked_id = v.identifier(feedback_id, "id")
    target = v.required_word(status, "status", FEEDBACK_STATUSES)
    note = v.text(note, "note", max_length=None)
    feedback = (
        await session.execute(
            select(Feedback)
            .where(Feedback.id == checked_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if feedback is None:
        raise NotFound("feedback", feedback_id, field="id")
    current = feedback.status
    if target != current and target not in STATUS_TRANSITIONS.get(current, frozenset()):
        raise UserError(f"feedback cannot move from {current} to {target}", field="status", code="invalid_transition")

    if note is not None:
        feedback.status_note = note
    if target != current:
        feedback.status = target
        if target in OPEN_STATUSES:
            feedback.resolved_at = None
        elif current in OPEN_STATUSES:
            feedback.resolved_at = utcnow()
        if feedback.kind == "complaint":
            was_open, is_open = current in OPEN_STATUSES, target in OPEN_STATUSES
            if was_open != is_open:
                delta = 1 if is_open else -1
                await bump_metrics(
                    session, feedback.customer_id, {"open_complaints": _plus("open_complaints", delta)}
                )
    await session.flush()
    await reevaluate(session, feedback.customer_id)
    return feedback
