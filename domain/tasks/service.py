"""The manual life cycle of a follow-up task: create, complete, cancel, reassign (docs/graphql.md, Tasks).

Every function validates all of its input before it writes, and works only on tasks the caller's
scope covers (domain/tasks/records.py `visible`): an agent gets `forbidden` for another's task, as
for a task that does not exist, so the answer never tells which ids exist.  At most one task of a
kind is open per customer: the database's partial unique index decides (no check-then-insert race),
and a second one is a `conflict`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain import validation as v
from segmenta.domain.access.scope import FORBIDDEN, Scope, ensure_may_act_on
from segmenta.domain.customers import activity
from segmenta.domain.customers.vocabulary import INTERACTION_KINDS
from segmenta.domain.errors import Conflict, NotFound, UserError
from segmenta.domain.tasks.records import title_of, visible
from segmenta.domain.tasks.vocabulary import CANCELLED, DEFAULT_COMPLETION_INTERACTION, DONE, OPEN
from segmenta.dsl.ast import MAX_TASK_DAYS
from segmenta.storage.dml import insert_ignoring_duplicates
from segmenta.storage.engine import affected_rows
from segmenta.storage.models import Customer, Employee, Task, Team, utcnow

_tasks = Task.__table__
KIND_LENGTH = v.column_length(Task, "kind")
TITLE_LENGTH = v.column_length(Task, "title")
# A due date may lie this far back (tasks entered late) or ahead.
DUE_WINDOW = timedelta(days=MAX_TASK_DAYS)
TASK_FORBIDDEN = "an agent may work only with their own tasks and their customers' tasks"


def due_timestamp(value: Any, field: str, now: datetime) -> datetime:
    """A naive UTC due time within DUE_WINDOW of now; a date means its midnight (UTC)."""
    parsed = v.parsed_datetime(value, field)
    out_of_range = UserError(f"{field} must be within {MAX_TASK_DAYS} days of now", field=field, code="out_of_range")
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # year 1 west of UTC, year 9999 east of it
            raise out_of_range from None
    if not now - DUE_WINDOW <= parsed <= now + DUE_WINDOW:
        raise out_of_range
    return parsed


async def _employee(session: AsyncSession, employee_id: Any, field: str) -> int:
    checked = v.identifier(employee_id, field)
    if await session.scalar(select(Employee.id).where(Employee.id == checked)) is None:
        raise NotFound("employee", employee_id, field=field)
    return checked


async def _team(session: AsyncSession, team_id: Any, field: str) -> int:
    checked = v.identifier(team_id, field)
    if await session.scalar(select(Team.id).where(Team.id == checked)) is None:
        raise NotFound("team", team_id, field=field)
    return checked


async def _assignee(
    session: AsyncSession, scope: Scope, customer_id: int, employee_id: Any, team_id: Any
) -> tuple[int | None, int | None]:
    """(employee, team queue): as given, else the customer's manager, else the queue of the customer's team."""
    if employee_id is not None and team_id is not None:
        raise UserError("give an assignee or a team, not both", field="assignee_id")
    if employee_id is not None:
        checked = await _employee(session, employee_id, "assignee_id")
        if scope.restricted and checked != scope.employee_id:
            raise UserError("an agent may assign tasks only to themselves", field="assignee_id", code=FORBIDDEN)
        return checked, None
    if team_id is not None:
        return None, await _team(session, team_id, "team_id")
    row = (await session.execute(select(Customer.manager_id, Customer.team_id).where(Customer.id == customer_id))).first()
    if row is None:
        raise NotFound("customer", customer_id, field="customer_id")
    manager_id, customer_team = row
    return (manager_id, None) if manager_id is not None else (None, customer_team)


async def create_task(
    session: AsyncSession,
    scope: Scope,
    *,
    customer_id: Any,
    kind: Any,
    due_at: Any,
    title: Any = None,
    employee_id: Any = None,
    team_id: Any = None,
    created_by_id: int | None = None,
    now: datetime | None = None,
) -> Task:
    """A manual task; assigned as given, else to the customer's manager or their team's queue."""
    now = now or utcnow()
    checked_customer = v.identifier(customer_id, "customer_id")
    checked_kind = v.required_text(kind, "kind", max_length=KIND_LENGTH).strip()
    if not checked_kind:
        raise UserError("kind must not be blank", field="kind")
    checked_title = v.text(title, "title", max_length=TITLE_LENGTH) or title_of(checked_kind)
    due = due_timestamp(due_at, "due_at", now)
    await ensure_may_act_on(session, scope, checked_customer)
    assigned_employee, assigned_team = await _assignee(session, scope, checked_customer, employee_id, team_id)
    statement = insert_ignoring_duplicates(session.get_bind().dialect.name, _tasks).returning(_tasks.c.id)
    row = {
        "customer_id": checked_customer, "employee_id": assigned_employee, "team_id": assigned_team,
        "kind": checked_kind, "title": checked_title, "due_at": due, "status": OPEN, "source": "manual",
        "rule": None, "ruleset_id": None, "run_id": None, "created_by_id": created_by_id, "created_at": now,
        "completed_at": None, "completed_by_id": None, "outcome": None,
    }
    task_id = (await session.execute(statement, [row])).scalar()
    if task_id is None:
        raise Conflict(f"the customer already has an open task of kind {checked_kind!r}", field="kind")
    return await _load(session, task_id)


async def _load(session: AsyncSession, task_id: int) -> Task:
    task = await session.get(Task, task_id, populate_existing=True)
    assert task is not None
    return task


async def get_task(session: AsyncSession, scope: Scope, task_id: Any, *, field: str = "id") -> Task:
    """The task, when the scope covers it; else `forbidden` for an agent, `not_found` otherwise."""
    checked = v.identifier(task_id, field)
    statement = select(Task).where(Task.id == checked)
    predicate = visible(scope)
    if predicate is not None:
        statement = statement.where(predicate)
    task = await session.scalar(statement.execution_options(populate_existing=True))
    if task is None:
        if scope.restricted:
            raise UserError(TASK_FORBIDDEN, field=field, code=FORBIDDEN)
        raise NotFound("task", task_id, field=field)
    return task


async def _close(
    session: AsyncSession, task: Task, status: str, outcome: str | None, by: int | None, now: datetime
) -> Task:
    """OPEN → status, in one UPDATE that re-tests OPEN: of two concurrent closers, one wins."""
    closed = await session.execute(
        update(_tasks)
        .where(and_(_tasks.c.id == task.id, _tasks.c.status == OPEN))
        .values(status=status, outcome=outcome, completed_at=now, completed_by_id=by)
    )
    if not affected_rows(closed):
        raise Conflict(f"task {task.id} is already {task.status}", field="id")
    return task


def _note(value: Any) -> str | None:
    return v.text(value, "outcome", max_length=None)


async def complete_task(
    session: AsyncSession,
    scope: Scope,
    task_id: Any,
    *,
    outcome: Any = None,
    interaction_kind: Any = None,
    completed_by_id: int | None = None,
    now: datetime | None = None,
) -> Task:
    """Mark the task DONE and record an interaction with its customer (so `days_since_contact` moves,
    and the customer is re-routed: a `-> task` rule that stops holding re-arms its kind)."""
    now = now or utcnow()
    note = _note(outcome)
    kind = v.word(interaction_kind, "interaction_kind", INTERACTION_KINDS) or DEFAULT_COMPLETION_INTERACTION
    task = await get_task(session, scope, task_id)
    if task.status != OPEN:
        raise Conflict(f"task {task.id} is already {task.status}", field="id")
    await _close(session, task, DONE, note, completed_by_id, now)
    summary = f"{task.title}: {note}" if note else task.title
    await activity.record_interaction(
        session,
        customer_id=task.customer_id,
        employee_id=completed_by_id if completed_by_id is not None else task.employee_id,
        kind=kind,
        occurred_at=now,
        summary=summary,
    )
    return await _load(session, task.id)


async def cancel_task(
    session: AsyncSession,
    scope: Scope,
    task_id: Any,
    *,
    reason: Any = None,
    cancelled_by_id: int | None = None,
    now: datetime | None = None,
) -> Task:
    now = now or utcnow()
    note = _note(reason)
    task = await get_task(session, scope, task_id)
    if task.status != OPEN:
        raise Conflict(f"task {task.id} is already {task.status}", field="id")
    await _close(session, task, CANCELLED, note, cancelled_by_id, now)
    return await _load(session, task.id)


async def reassign_task(
    session: AsyncSession,
    scope: Scope,
    task_id: Any,
    *,
    employee_id: Any = None,
    team_id: Any = None,
) -> Task:
    """Give an open task to an employee or a team's queue (neither: back to the customer's manager or team)."""
    task = await get_task(session, scope, task_id)
    if task.status != OPEN:
        raise Conflict(f"task {task.id} is {task.status}; only an open task can be reassigned", field="id")
    assigned_employee, assigned_team = await _assignee(session, scope, task.customer_id, employee_id, team_id)
    await session.execute(
        update(_tasks).where(_tasks.c.id == task.id).values(employee_id=assigned_employee, team_id=assigned_team)
    )
    return await _load(session, task.id)
