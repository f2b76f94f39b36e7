"""Customer metrics: set-based recomputation, and the per-customer mapping rules read.

The metric columns on ``customers`` are maintained incrementally by domain/customers/activity.py
(one arithmetic UPDATE per event).  ``recompute_metrics`` derives the same columns
from scratch with correlated subqueries — after bulk imports and seeding, and to
repair — and must agree with the incremental path (a property test checks it).
"""

from __future__ import annotations

import typing
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, case, cast, extract, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.customers.records import (
    MANUAL,
    chunked,
    get_customer_attributes,
    get_customer_categories,
    get_customer_tags,
)
from segmenta.domain.customers.vocabulary import OPEN_STATUSES
from segmenta.dsl.fields import ATTRIBUTE_PREFIX, derive_day_metrics
from segmenta.dsl.money import ZERO, mean_to_cent, to_decimal
from segmenta.storage.models import Customer, Feedback, Interaction, Purchase

_customers = Customer.__table__
_purchases = Purchase.__table__
_feedback = Feedback.__table__
_interactions = Interaction.__table__

# Customer columns that are rule fields under the same name (docs/rule-language.md, 'Fields').
PROFILE_FIELDS = (
    "code",
    "name",
    "kind",
    "industry",
    "size",
    "region",
    "city",
    "country",
    "lifecycle",
    "purchasing_power",
    "channel",
    "email",
    "phone",
    "address",
    "age",
    "gender",
    "income",
    "occupation",
    "birthday",
    "created_at",
)
METRIC_COLUMNS = (
    "purchase_count",
    "total_spent",
    "first_purchase_at",
    "last_purchase_at",
    "survey_count",
    "survey_sum",
    "nps_count",
    "nps_sum",
    "feedback_count",
    "complaint_count",
    "open_complaints",
    "interaction_count",
    "last_contact_at",
)


def _recomputed_columns() -> dict[str, Any]:
    """Every maintained column as a correlated subquery over the activity tables."""
    owner = _customers.c.id

    def of_purchases(aggregate: Any) -> Any:
        return select(aggregate).where(_purchases.c.customer_id == owner).scalar_subquery()

    def of_feedback(aggregate: Any, *conditions: Any) -> Any:
        return select(aggregate).where(_feedback.c.customer_id == owner, *conditions).scalar_subquery()

    def of_interactions(aggregate: Any) -> Any:
        return select(aggregate).where(_interactions.c.customer_id == owner).scalar_subquery()

    score = _feedback.c.score
    birthday = _customers.c.birthday
    return {
        "purchase_count": of_purchases(func.count(_purchases.c.id)),
        "total_spent": of_purchases(func.coalesce(func.sum(_purchases.c.amount), 0)),
        "first_purchase_at": of_purchases(func.min(_purchases.c.purchased_at)),
        "last_purchase_at": of_purchases(func.max(_purchases.c.purchased_at)),
        "survey_count": of_feedback(func.count(score), _feedback.c.kind == "survey"),
        "survey_sum": of_feedback(func.coalesce(func.sum(score), 0.0), _feedback.c.kind == "survey"),
        "nps_count": of_feedback(func.count(score), _feedback.c.kind == "nps"),
        "nps_sum": of_feedback(func.coalesce(func.sum(score), 0.0), _feedback.c.kind == "nps"),
        "feedback_count": of_feedback(func.count(_feedback.c.id)),
        "complaint_count": of_feedback(func.count(_feedback.c.id), _feedback.c.kind == "complaint"),
        "open_complaints": of_feedback(
            func.count(_feedback.c.id),
            _feedback.c.kind == "complaint",
            _feedback.c.status.in_(sorted(OPEN_STATUSES)),
        ),
        "interaction_count": of_interactions(func.count(_interactions.c.id)),
        "last_contact_at": of_interactions(func.max(_interactions.c.occurred_at)),
        "birthday_md": case(
            (birthday.is_(None), None),
            else_=cast(extract("month", birthday) * 100 + extract("day", birthday), Integer),
        ),
    }


async def recompute_metrics(session: AsyncSession, customer_ids: Collection[int] | None = None) -> None:
    """Recompute every maintained metric column (and birthday_md) of the given customers, or of all.

    One UPDATE per 5000 customers; loaded Customer objects are refreshed afterwards.
    """
    columns = _recomputed_columns()
    if customer_ids is None:
        await session.execute(update(_customers).values(columns))
    else:
        for chunk in chunked(list(dict.fromkeys(customer_ids))):
            await session.execute(update(_customers).where(_customers.c.id.in_(chunk)).values(columns))
    await _refresh_loaded_customers(session, None if customer_ids is None else set(customer_ids))


async def _refresh_loaded_customers(session: AsyncSession, customer_ids: set[int] | None) -> None:
    loaded = [
        key[1][0]
        for key in session.sync_session.identity_map.keys()
        if key[0] is Customer and (customer_ids is None or key[1][0] in customer_ids)
    ]
    for chunk in chunked(loaded):
        await session.execute(
            select(Customer).where(Customer.id.in_(chunk)).execution_options(populate_existing=True)
        )


def _reader(customer: Customer | Mapping[str, Any]) -> Any:
    if isinstance(customer, Mapping):
        return customer.get
    return lambda name: getattr(customer, name)


def _mean(total: float | None, count: int | None) -> float | None:
    return float(total or 0.0) / count if count else None


def customer_metrics(customer: Customer | Mapping[str, Any]) -> dict[str, Any]:
    """The stored metrics of one customer (docs/domain.md, 'Maintained metrics'; day-based ones excluded: see
    derive_day_metrics).

    Counts and sums are numbers (0 when there is nothing to count); averages and
    dates are None when there is nothing to average or date.
    """
    get = _reader(customer)
    purchase_count = get("purchase_count") or 0
    stored_total = get("total_spent")
    total_spent = stored_total if stored_total.__class__ is Decimal else to_decimal(stored_total or ZERO)
    return {
        "purchase_count": purchase_count,
        "total_spent": total_spent,
        # Money: rounded half to even to the cent, exactly as the SQL compiler computes it.
        "avg_order_value": mean_to_cent(total_spent, purchase_count),
        "first_purchase_at": get("first_purchase_at"),
        "last_purchase_at": get("last_purchase_at"),
        "avg_satisfaction": _mean(get("survey_sum"), get("survey_count")),
        "nps": _mean(get("nps_sum"), get("nps_count")),
        "feedback_count": get("feedback_count") or 0,
        "complaint_count": get("complaint_count") or 0,
        "open_complaints": get("open_complaints") or 0,
        "interaction_count": get("interaction_count") or 0,
        "last_contact_at": get("last_contact_at"),
    }


def rule_values(
    customer: Customer | Mapping[str, Any],
    tags: Iterable[str],
    attributes: Mapping[str, Any],
    categories: Iterable[str],
    *,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    """The mapping the Python rule evaluator reads, keyed by rule-language names.

    `customer` is a Customer or a row mapping of the customers table.  Missing values
    are left out (a missing key is a missing value); `tags` and `product_categories`
    are frozensets (empty when there are none).  `last_contact_at` is included as the
    source of days_since_contact.  With `as_of`, the day-based metrics are added too.
    """
    get = _reader(customer)
    values: dict[str, Any] = {}
    for field in PROFILE_FIELDS:
        value = get(field)
        if value is not None:
            values[field] = value
    for metric, value in customer_metrics(customer).items():
        if value is not None:
            values[metric] = value
    values["tags"] = frozenset(tags)
    values["product_categories"] = frozenset(categories)
    for key, value in attributes.items():
        if value is not None:
            values[ATTRIBUTE_PREFIX + key] = value
    if as_of is not None:
        values.update(derive_day_metrics(values, as_of))
    return values


async def load_rule_values(
    session: AsyncSession, customer_ids: Collection[int], *, as_of: datetime | None = None
) -> dict[int, dict[str, Any]]:
    """rule_values for many customers with four queries per 5000 ids (rows, manual tags,
    attributes, distinct categories); unknown ids are left out of the result."""
    ids = list(dict.fromkeys(customer_ids))
    rows: dict[int, Mapping[str, Any]] = {}
    for chunk in chunked(ids):
        for row in await session.execute(select(_customers).where(_customers.c.id.in_(chunk))):
            rows[row.id] = typing.cast(Mapping[str, Any], row._mapping)  # RowMapping's key type also admits columns
    found = list(rows)
    tags = await get_customer_tags(session, found, source=MANUAL)
    attributes = await get_customer_attributes(session, found)
    categories = await get_customer_categories(session, found)
    return {
        customer_id: rule_values(
            row, tags[customer_id], attributes[customer_id], categories[customer_id], as_of=as_of
        )
        for customer_id, row in rows.items()
    }
