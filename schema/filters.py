"""Filter inputs of the list queries, and the SQL conditions they stand for."""

from __future__ import annotations

from datetime import datetime

import strawberry
from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select

from segmenta.domain import validation
from segmenta.domain.errors import UserError
from segmenta.domain.tasks import records as task_records
from segmenta.schema.enums import (
    CustomerKind,
    CustomerSize,
    FeedbackKind,
    FeedbackStatus,
    Lifecycle,
    PurchasingPower,
    TaskSource,
    TaskStatus,
)
from segmenta.schema.errors import client_error
from segmenta.schema.ids import decode_id
from segmenta.schema.timestamps import to_storage
from segmenta.storage import models

_customer = models.Customer


@strawberry.input(
    description=(
        "Simple customer filters; every given field must hold (AND). `...In` fields match any of the listed "
        "values. For anything richer use the `where` argument (a rule condition)."
    )
)
class CustomerFilter:
    kind: CustomerKind | None = strawberry.field(default=None, description="Customers of this kind.")
    industry: str | None = strawberry.field(
        default=None, description="Customers in this industry (exact word).",
    )
    industry_in: list[str] | None = strawberry.field(default=None, description="Customers in any of these industries.")
    size: CustomerSize | None = strawberry.field(default=None, description="Customers of this size.")
    size_in: list[CustomerSize] | None = strawberry.field(default=None, description="Customers of any of these sizes.")
    region: str | None = strawberry.field(default=None, description="Customers in this region (exact word).")
    region_in: list[str] | None = strawberry.field(default=None, description="Customers in any of these regions.")
    city: str | None = strawberry.field(default=None, description="Customers in this city (exact text).")
    country: str | None = strawberry.field(
        default=None, description="Customers in this country (exact text).",
    )
    lifecycle: Lifecycle | None = strawberry.field(default=None, description="Customers at this lifecycle stage.")
    lifecycle_in: list[Lifecycle] | None = strawberry.field(
        default=None, description="Customers at any of these lifecycle stages.",
    )
    purchasing_power: PurchasingPower | None = strawberry.field(
        default=None,
        description="Customers with this purchasing power."
    )
    channel: str | None = strawberry.field(
        default=None, description="Customers with this channel (exact word).",
    )
    team_key: str | None = strawberry.field(default=None, description="Customers of the team with this key.")
    manager_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Customers this employee (an Employee ID) manages."
    )
    unassigned: bool | None = strawberry.field(default=None, description="true: no team; false: has a team.")
    assignment_locked: bool | None = strawberry.field(
        default=None, description="true: only customers whose assignment is locked; false: only unlocked ones.",
    )
    tag: str | None = strawberry.field(default=None, description="Has this tag (manual or rule-made).")
    segment_key: str | None = strawberry.field(default=None, description="Member of the segment with this key.")
    search: str | None = strawberry.field(
        default=None, description="Case-insensitive substring of the name or the code."
    )


def customer_conditions(given: CustomerFilter | None) -> list[ColumnElement[bool]]:
    """The SQL conditions of a filter; raises schema.ids.InvalidId for a malformed `managerId`."""
    if given is None:
        return []
    conditions: list[ColumnElement[bool]] = []
    equalities = {
        _customer.kind: given.kind.value if given.kind else None,
        _customer.industry: given.industry,
        _customer.size: given.size.value if given.size else None,
        _customer.region: given.region,
        _customer.city: given.city,
        _customer.country: given.country,
        _customer.lifecycle: given.lifecycle.value if given.lifecycle else None,
        _customer.purchasing_power: given.purchasing_power.value if given.purchasing_power else None,
        _customer.channel: given.channel,
    }
    conditions.extend(column == value for column, value in equalities.items() if value is not None)
    memberships = {
        _customer.industry: given.industry_in,
        _customer.region: given.region_in,
        _customer.size: [size.value for size in given.size_in] if given.size_in is not None else None,
        _customer.lifecycle: [stage.value for stage in given.lifecycle_in] if given.lifecycle_in is not None else None,
    }
    conditions.extend(column.in_(values) for column, values in memberships.items() if values is not None)
    if given.team_key is not None:
        conditions.append(_customer.team_id.in_(select(models.Team.id).where(models.Team.key == given.team_key)))
    if given.manager_id is not None:
        conditions.append(_customer.manager_id == decode_id(given.manager_id, "Employee"))
    if given.unassigned is not None:
        conditions.append(_customer.team_id.is_(None) if given.unassigned else _customer.team_id.is_not(None))
    if given.assignment_locked is not None:
        conditions.append(_customer.assignment_locked.is_(given.assignment_locked))
    if given.tag is not None:
        conditions.append(
            exists().where(models.CustomerTag.customer_id == _customer.id, models.CustomerTag.tag == given.tag)
        )
    if given.segment_key is not None:
        conditions.append(
            exists().where(
                models.SegmentMember.customer_id == _customer.id,
                models.SegmentMember.segment_id == models.Segment.id,
                models.Segment.key == given.segment_key,
            )
        )
    if given.search:
        term = given.search.lower()
        conditions.append(
            or_(
                func.lower(_customer.name).contains(term, autoescape=True),
                func.lower(_customer.code).contains(term, autoescape=True),
            )
        )
    return conditions


@strawberry.input(description="Feedback filters; every given field must hold (AND).")
class FeedbackFilter:
    kind: FeedbackKind | None = strawberry.field(default=None, description="Feedback of this kind.")
    kind_in: list[FeedbackKind] | None = strawberry.field(default=None, description="Feedback of any of these kinds.")
    status: FeedbackStatus | None = strawberry.field(default=None, description="Feedback in this status.")
    status_in: list[FeedbackStatus] | None = strawberry.field(
        default=None,
        description="Feedback in any of these statuses."
    )
    customer_id: strawberry.ID | None = strawberry.field(
        default=None, description=(
            "Feedback of this customer (a Customer ID); for an agent, a customer not theirs finds nothing."
        ),
    )
    employee_id: strawberry.ID | None = strawberry.field(
        default=None, description="Feedback naming this employee (an Employee ID).",
    )
    created_after: datetime | None = strawberry.field(
        default=None,
        description="Created at or after this instant (without a zone: UTC)."
    )
    created_before: datetime | None = strawberry.field(
        default=None,
        description="Created before this instant (without a zone: UTC)."
    )


def feedback_conditions(given: FeedbackFilter | None) -> list[ColumnElement[bool]]:
    if given is None:
        return []
    feedback = models.Feedback
    conditions: list[ColumnElement[bool]] = []
    if given.kind is not None:
        conditions.append(feedback.kind == given.kind.value)
    if given.kind_in is not None:
        conditions.append(feedback.kind.in_([kind.value for kind in given.kind_in]))
    if given.status is not None:
        conditions.append(feedback.status == given.status.value)
    if given.status_in is not None:
        conditions.append(feedback.status.in_([status.value for status in given.status_in]))
    if given.customer_id is not None:
        conditions.append(feedback.customer_id == decode_id(given.customer_id, "Customer"))
    if given.employee_id is not None:
        conditions.append(feedback.employee_id == decode_id(given.employee_id, "Employee"))
    if given.created_after is not None:
        conditions.append(feedback.created_at >= _instant(given.created_after, "createdAfter"))
    if given.created_before is not None:
        conditions.append(feedback.created_at < _instant(given.created_before, "createdBefore"))
    return conditions


def _instant(stamp: datetime, name: str) -> datetime:
    try:
        return to_storage(stamp)  # type: ignore[return-value]
    except UserError as error:  # year 1 east of UTC, year 9999 west of it
        raise client_error(f"filter.{name}: {error.message}") from None


MAX_FILTER_KINDS = 100


@strawberry.input(description="Task filters; every given field must hold (AND).")
class TaskFilter:
    status: TaskStatus | None = strawberry.field(default=None, description="Tasks in this status.")
    status_in: list[TaskStatus] | None = strawberry.field(default=None, description="Tasks in any of these statuses.")
    kind: str | None = strawberry.field(default=None, description="Tasks of this kind (exact word).")
    kind_in: list[str] | None = strawberry.field(default=None, description="Tasks of any of these kinds (at most 100).")
    source: TaskSource | None = strawberry.field(default=None, description="Tasks from this source.")
    overdue: bool | None = strawberry.field(
        default=None, description="true: OPEN tasks past their due time; false: every other task."
    )
    due_before: datetime | None = strawberry.field(default=None, description="Due before this instant (without a zone: UTC).")
    due_after: datetime | None = strawberry.field(default=None, description="Due at or after this instant (without a zone: UTC).")
    assignee_id: strawberry.ID | None = strawberry.field(default=None, description="Assigned to this employee (an Employee ID).")
    team_id: strawberry.ID | None = strawberry.field(default=None, description="In the queue of this team (a Team ID).")
    customer_id: strawberry.ID | None = strawberry.field(
        default=None, description="Tasks of this customer (a Customer ID); for an agent, only the tasks they may see."
    )
    unassigned: bool | None = strawberry.field(
        default=None, description="true: tasks with neither an assignee nor a team queue; false: the others."
    )


def task_conditions(given: TaskFilter | None, now: datetime) -> list[ColumnElement[bool]]:
    if given is None:
        return []
    kinds = [*([given.kind] if given.kind is not None else []), *(given.kind_in or [])]
    if len(kinds) > MAX_FILTER_KINDS:
        raise client_error(f"filter.kindIn: at most {MAX_FILTER_KINDS} kinds")
    statuses = [*([given.status] if given.status is not None else []), *(given.status_in or [])]
    conditions = task_records.conditions(
        task_records.TaskFilter(
            statuses=[status.value for status in statuses],
            sources=[given.source.value] if given.source is not None else [],
            employee_id=decode_id(given.assignee_id, "Employee") if given.assignee_id is not None else None,
            team_id=decode_id(given.team_id, "Team") if given.team_id is not None else None,
            customer_id=decode_id(given.customer_id, "Customer") if given.customer_id is not None else None,
            unassigned=given.unassigned,
            overdue=given.overdue,
            due_before=_instant(given.due_before, "dueBefore") if given.due_before is not None else None,
            due_after=_instant(given.due_after, "dueAfter") if given.due_after is not None else None,
        ),
        now,
    )
    if given.kind is not None:
        conditions.append(models.Task.kind == _task_kind(given.kind, "kind"))
    if given.kind_in is not None:
        conditions.append(models.Task.kind.in_([_task_kind(kind, "kindIn") for kind in given.kind_in]))
    return conditions


def _task_kind(kind: str, name: str) -> str:
    # Refused here rather than sent: PostgreSQL cannot compare text holding a NUL.
    try:
        return validation.lookup_text(kind, name, max_length=validation.column_length(models.Task, "kind"))
    except UserError as error:
        raise client_error(f"filter.{name}: {error.message}") from None


def filtered(statement: Select[tuple[models.Base]], conditions: list[ColumnElement[bool]]) -> Select[tuple[models.Base]]:
    return statement.where(and_(*conditions)) if conditions else statement
