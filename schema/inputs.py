"""Mutation inputs (docs/graphql.md, 'Mutations') and their conversion to the domain's snake_case dicts.

Create inputs drop fields left null (the domain default applies); patch inputs
use `strawberry.UNSET` so a field that is not given stays as it is while an
explicit `null` clears it.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import date, datetime
from decimal import Decimal
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
    code: str = strawberry.field(
        description=(
            "Required. The unique external code (at most 100 characters); CONFLICT when another customer has it."
        ),
    )
    name: str = strawberry.field(
        description="Required. The customer's name (at most 200 characters).",
    )
    kind: CustomerKind | None = strawberry.field(default=None, description="Company or person. Optional.")
    industry: str | None = strawberry.field(
        default=None, description="Industry, a free word such as `finance`. Optional.",
    )
    size: CustomerSize | None = strawberry.field(default=None, description="Company size. Optional.")
    region: str | None = strawberry.field(
        default=None, description="Region, a free word such as `east`. Optional.",
    )
    city: str | None = strawberry.field(default=None, description="City. Optional.")
    country: str | None = strawberry.field(default=None, description="Country. Optional.")
    lifecycle: Lifecycle | None = strawberry.field(default=None, description="Lifecycle stage. Optional.")
    purchasing_power: PurchasingPower | None = strawberry.field(default=None, description="Purchasing power. Optional.")
    channel: str | None = strawberry.field(
        default=None, description=(
            "The channel the customer is reached or buys through, a free word such as `online`. Optional."
        ),
    )
    email: str | None = strawberry.field(
        default=None, description="E-mail address; it must look like one and is stored lower-case. Optional.",
    )
    phone: str | None = strawberry.field(default=None, description="Phone number. Optional.")
    address: str | None = strawberry.field(default=None, description="Postal address. Optional.")
    age: float | None = strawberry.field(default=None, description="Age in years, 0–150. Optional.")
    gender: str | None = strawberry.field(default=None, description="Gender. Optional.")
    income: float | None = strawberry.field(
        default=None, description="Income in the currency's units, 0 or more. Optional.",
    )
    occupation: str | None = strawberry.field(default=None, description="Occupation. Optional.")
    birthday: date | None = strawberry.field(
        default=None, description="Date of birth (YYYY-MM-DD), from 1900-01-01 to today. Optional.",
    )
    tags: list[str] | None = strawberry.field(
        default=None,
        description="Manual tags: at most 50, each ≤ 100 characters.",
    )
    attributes: JSON | None = strawberry.field(
        default=None,
        description=(
            'Custom attributes: an object of text or number values, e.g. {"tier": "gold"}; at most 50 keys of '
            "≤ 64 characters, texts ≤ 500 characters."
        ),
    )
    created_at: datetime | None = strawberry.field(
        default=None,
        description=(
            "When the customer was created, for imports; default now. From 1900-01-01 to now + 1 day; without a "
            "zone: UTC."
        ),
    )


@strawberry.input(
    description=(
        "Changes to a customer: fields not given stay as they are, `null` clears a field. "
        "`tags` replaces the manual tags; `attributes` merges (a null value removes that key)."
    )
)
class CustomerPatch:
    code: str | None = strawberry.field(
        default=UNSET, description=(
            "The unique external code (at most 100 characters); CONFLICT when another customer has it. Not given: "
            "unchanged; cannot be cleared."
        ),
    )
    name: str | None = strawberry.field(
        default=UNSET,
        description="The customer's name (at most 200 characters). Not given: unchanged; cannot be cleared.",
    )
    kind: CustomerKind | None = strawberry.field(
        default=UNSET, description="Company or person. Not given: unchanged; null clears it.",
    )
    industry: str | None = strawberry.field(
        default=UNSET, description="Industry, a free word such as `finance`. Not given: unchanged; null clears it.",
    )
    size: CustomerSize | None = strawberry.field(
        default=UNSET, description="Company size. Not given: unchanged; null clears it.",
    )
    region: str | None = strawberry.field(
        default=UNSET, description="Region, a free word such as `east`. Not given: unchanged; null clears it.",
    )
    city: str | None = strawberry.field(
        default=UNSET, description="City. Not given: unchanged; null clears it.",
    )
    country: str | None = strawberry.field(
        default=UNSET, description="Country. Not given: unchanged; null clears it.",
    )
    lifecycle: Lifecycle | None = strawberry.field(
        default=UNSET, description="Lifecycle stage. Not given: unchanged; null clears it.",
    )
    purchasing_power: PurchasingPower | None = strawberry.field(
        default=UNSET, description="Purchasing power. Not given: unchanged; null clears it.",
    )
    channel: str | None = strawberry.field(
        default=UNSET, description=(
            "The channel the customer is reached or buys through, a free word such as `online`. Not given: "
            "unchanged; null clears it."
        ),
    )
    email: str | None = strawberry.field(
        default=UNSET, description=(
            "E-mail address; it must look like one and is stored lower-case. Not given: unchanged; null clears "
            "it."
        ),
    )
    phone: str | None = strawberry.field(
        default=UNSET, description="Phone number. Not given: unchanged; null clears it.",
    )
    address: str | None = strawberry.field(
        default=UNSET, description="Postal address. Not given: unchanged; null clears it.",
    )
    age: float | None = strawberry.field(
        default=UNSET, description="Age in years, 0–150. Not given: unchanged; null clears it.",
    )
    gender: str | None = strawberry.field(
        default=UNSET, description="Gender. Not given: unchanged; null clears it.",
    )
    income: float | None = strawberry.field(
        default=UNSET, description="Income in the currency's units, 0 or more. Not given: unchanged; null clears it.",
    )
    occupation: str | None = strawberry.field(
        default=UNSET, description="Occupation. Not given: unchanged; null clears it.",
    )
    birthday: date | None = strawberry.field(
        default=UNSET, description=(
            "Date of birth (YYYY-MM-DD), from 1900-01-01 to today. Not given: unchanged; null clears it."
        ),
    )
    tags: list[str] | None = strawberry.field(
        default=UNSET, description=(
            "Replaces the manual tags (rule-made tags stay): at most 50, each at most 100 characters. Not given: "
            "unchanged."
        ),
    )
    attributes: JSON | None = strawberry.field(
        default=UNSET, description=(
            "Merged into the custom attributes: each key given is set, a key with a null value is removed, other "
            "keys stay. Keys at most 64 characters, texts at most 500, at most 50 keys in all. Not given: "
            "unchanged."
        ),
    )


@strawberry.input(
    description="A purchase to record; it updates the customer's purchase metrics in the same transaction."
)
class PurchaseInput:
    customer_id: strawberry.ID = strawberry.field(
        description=(
            "The customer (a Customer ID). An agent may name only their customers: FORBIDDEN otherwise, and "
            "nothing is written."
        ),
    )
    amount: Decimal = strawberry.field(
        description=(
            "The amount paid, in the currency's units: 0 to 1,000,000,000 with at most 2 decimals (a string such "
            "as \"12.30\" or a number; more decimals are refused, never rounded); the customer's total stays "
            "≤ 1,000,000,000,000."
        ),
    )
    category: str | None = strawberry.field(
        default=None, description="Product category, a free word such as `software`. Optional.",
    )
    product: str | None = strawberry.field(default=None, description="Product name. Optional.")
    channel: str | None = strawberry.field(
        default=None, description="Where the purchase was made, a free word such as `web`. Optional.",
    )
    purchased_at: datetime | None = strawberry.field(
        default=None,
        description="When the purchase was made; default now. From 1900-01-01 to now + 1 day; without a zone: UTC.",
    )


@strawberry.input(
    description=(
        "A contact with a customer to record; it updates the customer's interaction metrics in the same "
        "transaction."
    )
)
class InteractionInput:
    customer_id: strawberry.ID = strawberry.field(
        description=(
            "The customer (a Customer ID). An agent may name only their customers: FORBIDDEN otherwise, and "
            "nothing is written."
        ),
    )
    kind: InteractionKind = strawberry.field(description="How the contact happened.")
    employee_id: strawberry.ID | None = strawberry.field(
        default=None, description="The employee involved (an Employee ID). Optional.",
    )
    occurred_at: datetime | None = strawberry.field(
        default=None, description="When it happened; default now. From 1900-01-01 to now + 1 day; without a zone: UTC."
    )
    summary: str | None = strawberry.field(default=None, description="What was discussed. Optional.")


@strawberry.input(description="SURVEY needs a score 1–5, NPS a score 0–10; other kinds take none.")
class FeedbackInput:
    customer_id: strawberry.ID = strawberry.field(
        description=(
            "The customer (a Customer ID). An agent may name only their customers: FORBIDDEN otherwise, and "
            "nothing is written."
        ),
    )
    kind: FeedbackKind = strawberry.field(
        description="The kind of feedback: it decides the score it takes and its first status.",
    )
    employee_id: strawberry.ID | None = strawberry.field(
        default=None, description="The employee the feedback names (an Employee ID). Optional.",
    )
    score: int | None = strawberry.field(
        default=None, description="SURVEY: a whole number 1–5; NPS: 0–10; other kinds: none (null).",
    )
    comment: str | None = strawberry.field(default=None, description="What the customer said. Optional.")
    channel: str | None = strawberry.field(
        default=None, description="How the feedback came in, a free word such as `phone`. Optional.",
    )


@strawberry.input(description="A new employee; `name` and `email` are required.")
class EmployeeInput:
    name: str = strawberry.field(description="The employee's name (required).")
    email: str = strawberry.field(
        description="Unique e-mail address (required); stored lower-case. Agent tokens are bound by it.",
    )
    level: EmployeeLevel | None = strawberry.field(default=None, description="Seniority; default JUNIOR.")
    specialties: list[str] | None = strawberry.field(
        default=None, description="Industries the employee knows best; default none."
    )
    regions: list[str] | None = strawberry.field(
        default=None, description="Regions the employee covers; default none.",
    )
    capacity: int | None = strawberry.field(default=None, description="Maximum customers; null = unlimited.")
    active: bool | None = strawberry.field(
        default=None, description="Default true; an inactive employee gets no new customers.",
    )
    monthly_target: Decimal | None = strawberry.field(
        default=None, description="Revenue target per month, in the currency's units, at most 2 decimals. Optional.",
    )


@strawberry.input(description="Changes to an employee: fields not given stay; `null` clears a nullable field.")
class EmployeePatch:
    name: str | None = strawberry.field(
        default=UNSET, description="The employee's name. Not given: unchanged; cannot be cleared.",
    )
    email: str | None = strawberry.field(
        default=UNSET, description="Unique e-mail address, stored lower-case. Not given: unchanged; cannot be cleared.",
    )
    level: EmployeeLevel | None = strawberry.field(default=UNSET, description="Seniority. Not given: unchanged.")
    specialties: list[str] | None = strawberry.field(
        default=UNSET, description="Industries the employee knows best (replaces the list). Not given: unchanged.",
    )
    regions: list[str] | None = strawberry.field(
        default=UNSET, description="Regions the employee covers (replaces the list). Not given: unchanged.",
    )
    capacity: int | None = strawberry.field(
        default=UNSET, description="Most customers the employee may manage. Not given: unchanged; null: unlimited.",
    )
    active: bool | None = strawberry.field(
        default=UNSET, description=(
            "False: the employee gets no new customers and cannot be assigned by hand. Not given: unchanged."
        ),
    )
    monthly_target: Decimal | None = strawberry.field(
        default=UNSET,
        description="Revenue target per month, in the currency's units. Not given: unchanged; null clears it.",
    )


@strawberry.input(description="A new team; `key` is required.")
class TeamInput:
    key: str = strawberry.field(description="The name rules use: a bare word such as `senior_sales`.")
    name: str | None = strawberry.field(default=None, description="Default: the key.")
    description: str | None = strawberry.field(default=None, description="What the team is for. Optional.")
    kind: TeamKind | None = strawberry.field(default=None, description="Default GENERAL.")
    strategy: TeamStrategy | None = strawberry.field(default=None, description="Default ROUND_ROBIN.")
    monthly_target: Decimal | None = strawberry.field(
        default=None, description="Revenue target per month, in the currency's units, at most 2 decimals. Optional.",
    )


@strawberry.input(
    description=(
        "Changes to a team: fields not given stay; `null` clears a nullable field. A new `key` renames the "
        "team (rules naming the old key then report unknown-team)."
    )
)
class TeamPatch:
    key: str | None = strawberry.field(
        default=UNSET, description=(
            "A new key renames the team (rules naming the old key then report unknown-team). Not given: "
            "unchanged."
        ),
    )
    name: str | None = strawberry.field(default=UNSET, description="Display name. Not given: unchanged.")
    description: str | None = strawberry.field(
        default=UNSET, description="What the team is for. Not given: unchanged; null clears it.",
    )
    kind: TeamKind | None = strawberry.field(
        default=UNSET, description="What the team is organised around. Not given: unchanged.",
    )
    strategy: TeamStrategy | None = strawberry.field(
        default=UNSET, description="How the team picks account managers. Not given: unchanged.",
    )
    monthly_target: Decimal | None = strawberry.field(
        default=UNSET,
        description="Revenue target per month, in the currency's units. Not given: unchanged; null clears it.",
    )
    active: bool | None = strawberry.field(
        default=UNSET,
        description=(
            "false deactivates the team (it takes no customers; the next run moves its customers on and "
            "reports them), true reactivates it. Not given: unchanged; null is refused."
        ),
    )


@strawberry.input(description="A new MANUAL segment.")
class SegmentInput:
    key: str = strawberry.field(description="The name rules and filters use, e.g. `vip_watch`.")
    name: str = strawberry.field(description="Display name (required).")
    description: str | None = strawberry.field(default=None, description="What the segment is for. Optional.")


@strawberry.input(description="Changes to a MANUAL segment: fields not given stay.")
class SegmentPatch:
    key: str | None = strawberry.field(
        default=UNSET,
        description="A new key renames the segment (`where` conditions name it by key). Not given: unchanged.",
    )
    name: str | None = strawberry.field(
        default=UNSET,
        description="Display name. Not given: unchanged; null is refused.",
    )
    description: str | None = strawberry.field(
        default=UNSET, description="What the segment is for. Not given: unchanged; null clears it.",
    )
