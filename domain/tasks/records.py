"""Reading tasks: who may see which (an agent: their own and their customers'), the list filters, and
the title a task kind gets.  Predicates only: the API adds them to the one statement that reads a page.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select

from segmenta.domain.access.scope import Scope
from segmenta.domain.tasks.vocabulary import OPEN
from segmenta.storage.models import Task, TeamMember
from segmenta.storage.rule_tasks import title_of

__all__ = ["TaskFilter", "conditions", "is_overdue", "is_overdue_now", "mine", "title_of", "visible"]


def visible(scope: Scope) -> ColumnElement[bool] | None:
    """THE rule of tasks an agent sees and acts on: assigned to them, in the queue of one of their teams,
    or about one of their customers (domain/access/scope.py).  None: every task (other roles)."""
    customers = scope.owned_by_visible(Task.customer_id)
    if customers is None:
        return None
    if scope.employee_id is None:
        return customers
    teams = select(TeamMember.team_id).where(TeamMember.employee_id == scope.employee_id)
    return or_(Task.employee_id == scope.employee_id, Task.team_id.in_(teams), customers)


@dataclass(frozen=True)
class TaskFilter:
    """The filters of a task list; every given one must hold.  `now` decides what is overdue."""

    statuses: Collection[str] = ()
    kinds: Collection[str] = ()
    sources: Collection[str] = ()
    employee_id: int | None = None
    team_id: int | None = None
    customer_id: int | None = None
    unassigned: bool | None = None
    overdue: bool | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None


def conditions(task_filter: TaskFilter | None, now: datetime) -> list[ColumnElement[bool]]:
    if task_filter is None:
        return []
    found: list[ColumnElement[bool]] = []
    if task_filter.statuses:
        found.append(Task.status.in_(list(task_filter.statuses)))
    if task_filter.kinds:
        found.append(Task.kind.in_(list(task_filter.kinds)))
    if task_filter.sources:
        found.append(Task.source.in_(list(task_filter.sources)))
    if task_filter.employee_id is not None:
        found.append(Task.employee_id == task_filter.employee_id)
    if task_filter.team_id is not None:
        found.append(Task.team_id == task_filter.team_id)
    if task_filter.customer_id is not None:
        found.append(Task.customer_id == task_filter.customer_id)
    if task_filter.unassigned is not None:
        nobody = and_(Task.employee_id.is_(None), Task.team_id.is_(None))
        found.append(nobody if task_filter.unassigned else ~nobody)
    if task_filter.overdue is not None:
        late = is_overdue(now)
        found.append(late if task_filter.overdue else ~late)
    if task_filter.due_before is not None:
        found.append(Task.due_at < task_filter.due_before)
    if task_filter.due_after is not None:
        found.append(Task.due_at >= task_filter.due_after)
    return found


def is_overdue(now: datetime) -> ColumnElement[bool]:
    """Overdue: still open after its due time (docs/graphql.md, Tasks)."""
    return and_(Task.status == OPEN, Task.due_at < now)


def is_overdue_now(task: Task, now: datetime) -> bool:
    """is_overdue for a task already loaded."""
    return task.status == OPEN and task.due_at < now


def mine(employee_id: int | None) -> ColumnElement[bool]:
    """`myTasks`: assigned to the caller's employee, or in the queue of one of their teams (none without one)."""
    if employee_id is None:
        return Task.id.is_(None)  # a token without an employee has no tasks of its own
    teams = select(TeamMember.team_id).where(TeamMember.employee_id == employee_id)
    return or_(Task.employee_id == employee_id, and_(Task.employee_id.is_(None), Task.team_id.in_(teams)))
