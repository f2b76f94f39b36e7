"""The figures GraphQL shows about customers: one customer's metrics (every rule-language metric, the
day-based ones measured at the request's instant) and the aggregates over a group of customers
(a team, an employee's customers, a segment, the whole base)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry

from segmenta.dsl.fields import derive_day_metrics
from segmenta.dsl.money import ZERO, mean_to_cent
from segmenta.schema.context import Info
from segmenta.schema.loaders import GroupStats
from segmenta.schema.timestamps import to_api
from segmenta.storage import models


def mean_of(total: float, count: int) -> float | None:
    """A mean of scores, or None for no values (money: dsl.money.mean_to_cent)."""
    return total / count if count else None


@strawberry.type(description="Every rule-language metric; day-based ones are measured at the time of the request.")
class CustomerMetrics:
    purchase_count: int = strawberry.field(description="Number of purchases.")
    total_spent: Decimal = strawberry.field(
        description="Sum of all purchase amounts (exact), in the currency's units; \"0.00\" without purchases.",
    )
    avg_order_value: Decimal | None = strawberry.field(
        description=(
            "totalSpent / purchaseCount rounded half to even to the cent (the value rules compare), in the "
            "currency's units; null without purchases."
        ),
    )
    first_purchase_at: datetime | None = strawberry.field(
        description="When the earliest purchase was made, UTC; null without purchases.",
    )
    last_purchase_at: datetime | None = strawberry.field(
        description="When the latest purchase was made, UTC; null without purchases.",
    )
    days_since_purchase: int | None = strawberry.field(
        description=(
            "Whole days (24-hour periods, rounded down) since the latest purchase, at the time of the request (in "
            "a mutation payload: after the write); null without purchases."
        ),
    )
    avg_satisfaction: float | None = strawberry.field(description="Mean survey score (1–5); null without surveys.")
    nps: float | None = strawberry.field(description="Mean NPS answer (0–10); null without NPS answers.")
    feedback_count: int = strawberry.field(description="Feedback items of every kind.")
    complaint_count: int = strawberry.field(description="Complaints, open or not.")
    open_complaints: int = strawberry.field(description="Complaints still OPEN or IN_PROGRESS.")
    interaction_count: int = strawberry.field(description="Number of interactions.")
    last_contact_at: datetime | None = strawberry.field(
        description="When the latest interaction happened, UTC; null without interactions.",
    )
    days_since_contact: int | None = strawberry.field(
        description=(
            "Whole days since the latest interaction, at the time of the request (in a mutation payload: after "
            "the write); null without interactions."
        ),
    )
    tenure_days: int | None = strawberry.field(
        description=(
            "Whole days since the customer was created, at the time of the request (in a mutation payload: after "
            "the write)."
        ),
    )
    days_to_birthday: int | None = strawberry.field(
        description=(
            "Days until the next birthday, 0 on the birthday (29 February: 1 March in other years); "
            "null without a birthday."
        )
    )
    customer_id: strawberry.Private[int]

    @strawberry.field(description="The distinct categories of the customer's purchases.")
    async def product_categories(self, info: Info) -> list[str]:
        return await info.context.loaders.categories_of_customer.load(self.customer_id)

    @classmethod
    def from_row(cls, row: models.Customer, now: datetime) -> CustomerMetrics:
        # Only the row: each figure is worked out when the query first reads it (__getattr__), as a page
        # usually selects a few of them.
        metrics = cls.__new__(cls)
        metrics.customer_id = row.id
        metrics.__dict__["_row"] = row
        metrics.__dict__["_now"] = now
        return metrics

    def __getattr__(self, name: str) -> Any:
        # Reached only for a field not read yet (a read one is in the instance's __dict__).
        convert = _METRIC_FIELDS.get(name)
        if convert is None or "_row" not in self.__dict__:
            raise AttributeError(name)
        value = convert(self, self.__dict__["_row"])
        self.__dict__[name] = value
        return value

    def _day_metrics(self) -> dict[str, int]:
        days: dict[str, int] | None = self.__dict__.get("_days")
        if days is None:
            row = self.__dict__["_row"]
            days = derive_day_metrics(
                {
                    "last_purchase_at": row.last_purchase_at,
                    "last_contact_at": row.last_contact_at,
                    "created_at": row.created_at,
                    "birthday": row.birthday,
                },
                self.__dict__["_now"],
            )
            self.__dict__["_days"] = days
        return days


# How each figure of CustomerMetrics comes from the customer's row, read lazily.
_METRIC_FIELDS: dict[str, Callable[[CustomerMetrics, models.Customer], Any]] = {
    "purchase_count": lambda metrics, row: row.purchase_count or 0,
    "total_spent": lambda metrics, row: row.total_spent or ZERO,
    "avg_order_value": lambda metrics, row: mean_to_cent(row.total_spent or ZERO, row.purchase_count or 0),
    "first_purchase_at": lambda metrics, row: to_api(row.first_purchase_at),
    "last_purchase_at": lambda metrics, row: to_api(row.last_purchase_at),
    "days_since_purchase": lambda metrics, row: metrics._day_metrics().get("days_since_purchase"),
    "avg_satisfaction": lambda metrics, row: mean_of(row.survey_sum or 0.0, row.survey_count or 0),
    "nps": lambda metrics, row: mean_of(row.nps_sum or 0.0, row.nps_count or 0),
    "feedback_count": lambda metrics, row: row.feedback_count or 0,
    "complaint_count": lambda metrics, row: row.complaint_count or 0,
    "open_complaints": lambda metrics, row: row.open_complaints or 0,
    "interaction_count": lambda metrics, row: row.interaction_count or 0,
    "last_contact_at": lambda metrics, row: to_api(row.last_contact_at),
    "days_since_contact": lambda metrics, row: metrics._day_metrics().get("days_since_contact"),
    "tenure_days": lambda metrics, row: metrics._day_metrics().get("tenure_days"),
    "days_to_birthday": lambda metrics, row: metrics._day_metrics().get("days_to_birthday"),
}


@strawberry.type(description="Aggregates over a group of customers (an agent: only their customers in it).")
class CustomerGroupStats:
    customer_count: int = strawberry.field(description="Number of customers in the group.")
    total_spent: Decimal = strawberry.field(
        description="Sum of the customers' purchase amounts (exact), in the currency's units; \"0.00\" without purchases.",
    )
    purchase_count: int = strawberry.field(description="Number of purchases of the customers.")
    avg_order_value: Decimal | None = strawberry.field(
        description=(
            "totalSpent / purchaseCount rounded half to even to the cent, in the currency's units; null without "
            "purchases."
        ),
    )
    avg_satisfaction: float | None = strawberry.field(
        description="Mean of all survey scores in the group (1–5); null without surveys."
    )
    nps: float | None = strawberry.field(
        description="Mean of all NPS answers in the group (0–10); null without NPS answers."
    )
    feedback_count: int = strawberry.field(description="Feedback items of the customers, every kind.")
    complaint_count: int = strawberry.field(description="Complaints of the customers, open or not.")
    open_complaints: int = strawberry.field(description="Complaints still OPEN or IN_PROGRESS.")
    interaction_count: int = strawberry.field(description="Interactions with the customers.")

    @staticmethod
    def fields_of(stats: GroupStats) -> dict[str, Any]:
        return {
            "customer_count": stats.customer_count,
            "total_spent": stats.total_spent,
            "purchase_count": stats.purchase_count,
            "avg_order_value": mean_to_cent(stats.total_spent, stats.purchase_count),
            "avg_satisfaction": mean_of(stats.survey_sum, stats.survey_count),
            "nps": mean_of(stats.nps_sum, stats.nps_count),
            "feedback_count": stats.feedback_count,
            "complaint_count": stats.complaint_count,
            "open_complaints": stats.open_complaints,
            "interaction_count": stats.interaction_count,
        }

    @classmethod
    def from_stats(cls, stats: GroupStats) -> CustomerGroupStats:
        return cls(**cls.fields_of(stats))


@strawberry.type(
    description=(
        "Figures over a team's customers (an agent: only their customers in it), with its member count and "
        "target."
    )
)
class TeamStats(CustomerGroupStats):
    member_count: int = strawberry.field(description="Number of team members.")
    monthly_target: Decimal | None = strawberry.field(
        description="The team's revenue target per month, in the currency's units; null when none.",
    )


@strawberry.type(
    description=(
        "Figures over the customers an employee manages (an agent: only their customers), with capacity and "
        "activity counts."
    )
)
class EmployeeStats(CustomerGroupStats):
    capacity: int | None = strawberry.field(description="Maximum customers; null = unlimited.")
    free_capacity: int | None = strawberry.field(description="Customers the employee can still take; null = unlimited.")
    interactions_handled: int = strawberry.field(description="Interactions recorded with this employee.")
    feedback_received: int = strawberry.field(description="Feedback naming this employee.")
    monthly_target: Decimal | None = strawberry.field(
        description="The employee's revenue target per month, in the currency's units; null when none.",
    )
