"""Mutation inputs (docs/graphql.md, 'Mutations') and their conversion to the domain's snake_case dicts.

Create inputs drop fields left null (the domain default applies); patch inputs
use `strawberry.UNSET` so a field that is not given stays as it is while an
explicit `null` clears it.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import date, datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON

from segmenta.schema.enums import (
    CustomerKind,
    CustomerSize,
    EmployeeLevel,
    FeedbackKind,
    InteractionKind,
    Lifecycle,
    PurchasingPower,
    TeamKind,
    TeamStrategy,
)

UNSET: Any = strawberry.UNSET


def _domain_value(value: Any) -> Any:
    # Datetimes go to the domain as given: it converts them to UTC and refuses the ones
    # whose conversion would overflow (year 1 west of UTC), with a userError on the field.
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [_domain_value(item) for item in value]
    return value


def as_create_data(given: Any, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The non-null fields of a create input, as domain values."""
    return {
        field.name: _domain_value(getattr(given, field.name))
        for field in fields(given)
        if field.name not in skip and getattr(given, field.name) is not None
    }


def as_patch(given: Any, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The given fields of a patch input (null included: it clears), as domain values."""
    return {
        field.name: _domain_value(getattr(given, field.name))
        for field in fields(given)
        if field.name not in skip and getattr(given, field.name) is not UNSET
    }


@strawberry.input(description="A new customer; `code` and `name` are required.")
class CustomerInput:
    code: str
    name: str
    kind: CustomerKind | None = None
    industry: str | None = None
    size: CustomerSize | None = None
    region: str | None = None
    city: str | None = None
    country: str | None = None
    lifecycle: Lifecycle | None = None
    purchasing_power: PurchasingPower | None = None
    channel: str | None = None
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    age: float | None = None
    gender: str | None = None
    income: float | None = None
    occupation: str | None = None
    birthday: date | None = None
    tags: list[str] | None = strawberry.field(default=None, description="Manual tags: at most 50, each ≤ 100 characters.")
    attributes: JSON | None = strawberry.field(
        default=None,
        description=(
            'Custom attributes: an object of text or number values, e.g. {"tier": "gold"}; at most 50 keys of '
            "≤ 64 characters, texts ≤ 500 characters."
        ),
    )
    created_at: datetime | None = strawberry.field(
        default=None, description="For imports; default now. From 1900-01-01 to now + 1 day."
    )


@strawberry.input(
    description=(
        "Changes to a customer: fields not given stay as they are, `null` clears a field. "
        "`tags` replaces the manual tags; `attributes` merges (a null value removes that key)."
    )
)
class CustomerPatch:
    code: str | None = UNSET
    name: str | None = UNSET
    kind: CustomerKind | None = UNSET
    industry: str | None = UNSET
    size: CustomerSize | None = UNSET
    region: str | None = UNSET
    city: str | None = UNSET
    country: str | None = UNSET
    lifecycle: Lifecycle | None = UNSET
    purchasing_power: PurchasingPower | None = UNSET
    channel: str | None = UNSET
    email: str | None = UNSET
    phone: str | None = UNSET
    address: str | None = UNSET
    age: float | None = UNSET
    gender: str | None = UNSET
    income: float | None = UNSET
    occupation: str | None = UNSET
    birthday: date | None = UNSET
    tags: list[str] | None = UNSET
    attributes: JSON | None = UNSET


@strawberry.input
class PurchaseInput:
    customer_id: strawberry.ID
    amount: float = strawberry.field(
        description="0 to 1,000,000,000 with at most 2 decimals; the customer's total stays ≤ 1,000,000,000,000."
    )
    category: str | None = None
    product: str | None = None
    channel: str | None = None
    purchased_at: datetime | None = strawberry.field(
        default=None, description="Default now. From 1900-01-01 to now + 1 day."
    )


@strawberry.input
class InteractionInput:
    customer_id: strawberry.ID
    kind: InteractionKind
    employee_id: strawberry.ID | None = None
    occurred_at: datetime | None = strawberry.field(
        default=None, description="Default now. From 1900-01-01 to now + 1 day."
    )
    summary: str | None = None


@strawberry.input(description="SURVEY needs a score 1–5, NPS a score 0–10; other kinds take none.")
class FeedbackInput:
    customer_id: strawberry.ID
    kind: FeedbackKind
    employee_id: strawberry.ID | None = None
    score: float | None = None
    comment: str | None = None
    channel: str | None = None


@strawberry.input
class EmployeeInput:
    name: str
    email: str
    level: EmployeeLevel | None = None
    specialties: list[str] | None = strawberry.field(default=None, description="Industries.")
    regions: list[str] | None = None
    capacity: int | None = strawberry.field(default=None, description="Maximum customers; null = unlimited.")
    active: bool | None = None
    monthly_target: float | None = None


@strawberry.input(description="Changes to an employee: fields not given stay; `null` clears a nullable field.")
class EmployeePatch:
    name: str | None = UNSET
    email: str | None = UNSET
    level: EmployeeLevel | None = UNSET
    specialties: list[str] | None = UNSET
    regions: list[str] | None = UNSET
    capacity: int | None = UNSET
    active: bool | None = UNSET
    monthly_target: float | None = UNSET


@strawberry.input
class TeamInput:
    key: str = strawberry.field(description="The name rules use: a bare word such as `senior_sales`.")
    name: str | None = strawberry.field(default=None, description="Default: the key.")
    description: str | None = None
    kind: TeamKind | None = strawberry.field(default=None, description="Default GENERAL.")
    strategy: TeamStrategy | None = strawberry.field(default=None, description="Default ROUND_ROBIN.")
    monthly_target: float | None = None


@strawberry.input(
    description=(
        "Changes to a team: fields not given stay; `null` clears a nullable field. A new `key` renames the "
        "team (rules naming the old key then report unknown-team)."
    )
)
class TeamPatch:
    key: str | None = UNSET
    name: str | None = UNSET
    description: str | None = UNSET
    kind: TeamKind | None = UNSET
    strategy: TeamStrategy | None = UNSET
    monthly_target: float | None = UNSET


@strawberry.input
class SegmentInput:
    key: str = strawberry.field(description="The name rules and filters use, e.g. `vip_watch`.")
    name: str
    description: str | None = None
