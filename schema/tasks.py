"""Follow-up tasks in the API (docs/graphql.md, Tasks): `tasks` and `myTasks`, and createTask, completeTask,
cancelTask and reassignTask over domain/tasks/service.py.

The caller's scope decides what a list holds and which task a mutation may touch (domain/tasks/records.py
`visible`): an agent sees and works on their own tasks, their teams' queues and their customers' tasks.
Every list is one keyset-paged statement (plus one for `totalCount` when asked).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from sqlalchemy import select

from segmenta.domain.tasks import records, service
from segmenta.schema.context import Info
from segmenta.schema.enums import InteractionKind
from segmenta.schema.filters import TaskFilter, filtered, task_conditions
from segmenta.schema.loaders import restricted
from segmenta.schema.orderings import TASK_ORDERINGS, TaskOrder, TaskOrderArgument
from segmenta.schema.pagination import (
    AfterArgument,
    Connection,
    FirstArgument,
    counter,
    fetch_page,
    page_size,
    to_connection,
)
from segmenta.schema.payloads import UserErrorType, in_transaction, input_id
from segmenta.schema.permissions import CanWorkTasks, scope
from segmenta.schema.types import Task
from segmenta.storage import models

TaskFilterArgument = Annotated[
    TaskFilter | None, strawberry.argument(description="Task filters; every given one must hold.")
]


async def _page(
    info: Info,
    extra: list[object],
    task_filter: TaskFilter | None,
    order_by: TaskOrder,
    first: int | None,
    after: str | None,
) -> Connection[Task]:
    size = page_size(first)
    now = info.context.now
    conditions = [*task_conditions(task_filter, now), *extra]
    statement = restricted(filtered(select(models.Task), conditions), records.visible(scope(info)))  # type: ignore[arg-type]
    ordering = TASK_ORDERINGS[order_by]
    db = info.context.db
    page = await fetch_page(db, statement, ordering, size, after)
    for row in page.rows:
        info.context.loaders.task.prime(row.id, row)
    return to_connection(page, ordering, lambda row: Task.from_row(row, now), counter(db, statement))


@strawberry.type
class TaskQuery:
    @strawberry.field(
        description=(
            "Follow-up tasks, paged, soonest due first by default (an agent: their own, their teams' queues and "
            "their customers' tasks). `first` ≤ 100."
        )
    )
    async def tasks(
        self,
        info: Info,
        filter: TaskFilterArgument = None,
        order_by: TaskOrderArgument = TaskOrder.DUE_AT_ASC,
        first: FirstArgument = None,
        after: AfterArgument = None,
    ) -> Connection[Task]:
        return await _page(info, [], filter, order_by, first, after)

    @strawberry.field(
        description=(
            "The caller's own tasks: assigned to the employee their token is bound to, or in the queue of one of "
            "that employee's teams (empty for a token without an employee). `first` ≤ 100."
        )
    )
    async def my_tasks(
        self,
        info: Info,
        filter: TaskFilterArgument = None,
        order_by: TaskOrderArgument = TaskOrder.DUE_AT_ASC,
        first: FirstArgument = None,
        after: AfterArgument = None,
    ) -> Connection[Task]:
        return await _page(info, [records.mine(_caller(info))], filter, order_by, first, after)


@strawberry.input(description="A task to create by hand.")
class CreateTaskInput:
    customer_id: strawberry.ID = strawberry.field(
        description="The customer (a Customer ID). An agent may name only their customers: FORBIDDEN otherwise."
    )
    kind: str = strawberry.field(
        description="The kind (1 to 100 characters); a customer has at most one OPEN task of a kind (CONFLICT)."
    )
    due_at: datetime = strawberry.field(
        description="When it is due; within 3650 days of now either way; without a zone: UTC."
    )
    title: str | None = strawberry.field(default=None, description="What to do; default: the kind in words.")
    assignee_id: strawberry.ID | None = strawberry.field(
        default=None,
        description=(
            "The employee (an Employee ID); default the customer's manager, else the queue of the customer's team. "
            "An agent may name only themselves."
        ),
    )
    team_id: strawberry.ID | None = strawberry.field(
        default=None, description="Put it in this team's queue instead (a Team ID); not with assigneeId."
    )


@strawberry.input(description="Completing an OPEN task.")
class CompleteTaskInput:
    id: strawberry.ID = strawberry.field(description="The task (a Task ID).")
    outcome: str | None = strawberry.field(default=None, description="What came of it; kept on the task and the interaction.")
    interaction_kind: InteractionKind | None = strawberry.field(
        default=None, description="The kind of the interaction recorded with the customer; default CALL."
    )


@strawberry.input(description="Cancelling an OPEN task.")
class CancelTaskInput:
    id: strawberry.ID = strawberry.field(description="The task (a Task ID).")
    reason: str | None = strawberry.field(default=None, description="Why; kept as the task's outcome.")


@strawberry.input(description="Giving an OPEN task to someone else.")
class ReassignTaskInput:
    id: strawberry.ID = strawberry.field(description="The task (a Task ID).")
    assignee_id: strawberry.ID | None = strawberry.field(
        default=None, description="The new assignee (an Employee ID); an agent may name only themselves."
    )
    team_id: strawberry.ID | None = strawberry.field(
        default=None,
        description=(
            "Or the team whose queue takes it (a Team ID). Neither: back to the customer's manager, else their team's queue."
        ),
    )


@strawberry.type(description="The result of createTask, completeTask, cancelTask or reassignTask.")
class TaskPayload:
    task: Task | None = strawberry.field(description="The task as written; null when userErrors is not empty.")
    user_errors: list[UserErrorType] = strawberry.field(description="Why nothing was changed; empty on success.")


def _payload(info: Info, row: models.Task | None, errors: list[UserErrorType]) -> TaskPayload:
    return TaskPayload(task=Task.from_row(row, info.context.now) if row is not None else None, user_errors=errors)


def _caller(info: Info) -> int | None:
    principal = info.context.principal
    return principal.employee_id if principal is not None else None


def _optional_id(value: strawberry.ID | None, type_name: str, field: str) -> int | None:
    return input_id(value, type_name, field) if value is not None else None


@strawberry.type
class TaskMutation:
    @strawberry.mutation(
        permission_classes=[CanWorkTasks],
        description="Create a task by hand. Roles: admin, manager, agent (an agent only for their customers).",
    )
    async def create_task(
        self, info: Info, input: Annotated[CreateTaskInput, strawberry.argument(description="The task.")]
    ) -> TaskPayload:
        session = info.context.session

        async def work() -> models.Task:
            return await service.create_task(
                session,
                scope(info),
                customer_id=input_id(input.customer_id, "Customer", "customer_id"),
                kind=input.kind,
                due_at=input.due_at,
                title=input.title,
                employee_id=_optional_id(input.assignee_id, "Employee", "assignee_id"),
                team_id=_optional_id(input.team_id, "Team", "team_id"),
                created_by_id=_caller(info),
                now=info.context.now,
            )

        row, errors = await in_transaction(info, work, prefix="input")
        return _payload(info, row, errors)

    @strawberry.mutation(
        permission_classes=[CanWorkTasks],
        description=(
            "Mark an OPEN task DONE and record an interaction with its customer (so daysSinceContact moves; the "
            "customer is re-routed). Roles: admin, manager, agent (an agent only the tasks they may see)."
        ),
    )
    async def complete_task(
        self, info: Info, input: Annotated[CompleteTaskInput, strawberry.argument(description="The task and outcome.")]
    ) -> TaskPayload:
        session = info.context.session

        async def work() -> models.Task:
            return await service.complete_task(
                session,
                scope(info),
                input_id(input.id, "Task", "id"),
                outcome=input.outcome,
                interaction_kind=input.interaction_kind.value if input.interaction_kind is not None else None,
                completed_by_id=_caller(info),
                now=info.context.now,
            )

        row, errors = await in_transaction(info, work, prefix="input")
        return _payload(info, row, errors)

    @strawberry.mutation(
        permission_classes=[CanWorkTasks],
        description="Cancel an OPEN task. Roles: admin, manager, agent (an agent only the tasks they may see).",
    )
    async def cancel_task(
        self, info: Info, input: Annotated[CancelTaskInput, strawberry.argument(description="The task and reason.")]
    ) -> TaskPayload:
        session = info.context.session

        async def work() -> models.Task:
            return await service.cancel_task(
                session, scope(info), input_id(input.id, "Task", "id"), reason=input.reason,
                cancelled_by_id=_caller(info), now=info.context.now,
            )

        row, errors = await in_transaction(info, work, prefix="input")
        return _payload(info, row, errors)

    @strawberry.mutation(
        permission_classes=[CanWorkTasks],
        description=(
            "Give an OPEN task to an employee or a team's queue. Roles: admin, manager, agent (an agent only the "
            "tasks they may see, and only to themselves or a team's queue)."
        ),
    )
    async def reassign_task(
        self, info: Info, input: Annotated[ReassignTaskInput, strawberry.argument(description="The task and assignee.")]
    ) -> TaskPayload:
        session = info.context.session

        async def work() -> models.Task:
            return await service.reassign_task(
                session,
                scope(info),
                input_id(input.id, "Task", "id"),
                employee_id=_optional_id(input.assignee_id, "Employee", "assignee_id"),
                team_id=_optional_id(input.team_id, "Team", "team_id"),
            )

        row, errors = await in_transaction(info, work, prefix="input")
        return _payload(info, row, errors)
