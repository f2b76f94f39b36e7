"""The statements of rule-made tasks (`-> task KIND [within N days]`, docs/rule-language.md "Tasks").

A customer gets a task of kind K when a rule giving K holds for them, did not hold at their previous
evaluation (no `task_triggers` row) and they have no open task of kind K.  Every evaluation then
records where the condition holds (inserts the trigger) and re-arms where it does not (deletes it).
The partial unique index on open tasks makes the insert idempotent whoever races it (an apply, the
schedule's apply, real-time routing, createTask): INSERT … ON CONFLICT DO NOTHING.

Runs are set-based: per `-> task` action one INSERT … SELECT over the run's work table (the customers
for whom that action is the first of its kind to hold), then per kind one INSERT and one DELETE of
triggers; a preview counts instead of inserting.  Real-time routing writes the few customers it
re-evaluated with a handful of statements, none per customer.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    and_,
    case,
    delete,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from segmenta.dsl.outcome import TaskOutcome
from segmenta.storage.dml import insert_ignoring_duplicates
from segmenta.storage.engine import affected_rows
from segmenta.storage.models import Customer, Task, TaskTrigger
from segmenta.storage.run_work_tables import WorkTables, dialect_name

tasks = Task.__table__
triggers = TaskTrigger.__table__
customers = Customer.__table__
OPEN = "open"
RULE = "rule"
TASK_COLUMNS = [
    "customer_id", "employee_id", "team_id", "kind", "title", "due_at", "status", "source", "rule",
    "ruleset_id", "run_id", "created_at",
]


def title_of(kind: str) -> str:
    """The title a rule-made task gets: its kind in words (`birthday_greeting` → "Birthday greeting")."""
    words = " ".join(kind.replace("_", " ").replace("-", " ").split())
    return (words[:1].upper() + words[1:])[:200] if words else kind[:200]


@dataclass(frozen=True)
class TaskCount:
    """Tasks of a kind a rule created (apply) or would create (preview)."""

    kind: str
    rule: str
    due_days: int
    count: int


def _held(customer_id: ColumnElement[int], kind: str) -> ColumnElement[bool]:
    return exists().where(triggers.c.customer_id == customer_id, triggers.c.kind == kind)


def _open(customer_id: ColumnElement[int], kind: str) -> ColumnElement[bool]:
    return exists().where(tasks.c.customer_id == customer_id, tasks.c.kind == kind, tasks.c.status == OPEN)


def _assignee_columns() -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """The customer's manager, or (no manager) the queue of the customer's team."""
    return customers.c.manager_id, case((customers.c.manager_id.is_(None), customers.c.team_id), else_=None)


async def run_tasks(
    session: AsyncSession,
    tables: WorkTables,
    *,
    apply: bool,
    ruleset_id: int | None,
    run_id: int,
    now: datetime,
) -> list[TaskCount]:
    """The run's tasks per action: inserted (apply, then the triggers follow the evaluation) or counted.

    An apply runs this after the customers' new managers are written, so a task goes to the
    manager the customer has after the apply.
    """
    work = tables.work
    counts: list[TaskCount] = []
    dialect = dialect_name(session)
    for kind, actions in tables.packed.tasks.items():
        earlier: list[ColumnElement[bool]] = []
        for task, position in actions:
            first = tables.wanted(position) if not earlier else and_(tables.wanted(position), not_(or_(*earlier)))
            earlier.append(tables.wanted(position))
            new = and_(first, not_(_held(work.c.customer_id, kind)), not_(_open(work.c.customer_id, kind)))
            if apply:
                manager, team = _assignee_columns()
                rows = select(
                    work.c.customer_id, manager, team, literal(kind, String), literal(title_of(kind), String),
                    literal(now + timedelta(days=task.due_days), DateTime), literal(OPEN, String), literal(RULE, String),
                    literal(task.rule, String), literal(ruleset_id, Integer), literal(run_id, Integer), literal(now, DateTime),
                ).select_from(work.join(customers, customers.c.id == work.c.customer_id)).where(new)
                result = await session.execute(insert_ignoring_duplicates(dialect, tasks).from_select(TASK_COLUMNS, rows))
                created = max(affected_rows(result), 0)
            else:
                created = int(await session.scalar(select(func.count()).select_from(work).where(new)) or 0)
            counts.append(TaskCount(kind, task.rule, task.due_days, created))
        if apply:
            await _follow_evaluation(session, tables, kind, or_(*earlier), now)
    if apply:
        # Kinds the ruleset no longer gives are re-armed: should a later ruleset give them again,
        # its first evaluation creates their tasks.
        await session.execute(delete(triggers).where(triggers.c.kind.not_in(list(tables.packed.tasks))))
    return counts


async def _follow_evaluation(
    session: AsyncSession, tables: WorkTables, kind: str, wanted: ColumnElement[bool], now: datetime
) -> None:
    """The triggers of `kind` to what the run found: inserted where it holds, deleted where it does not."""
    work = tables.work
    # Driven by the (few) triggers, each probing its work row by key; a customer created after the
    # run's snapshot has no work row and keeps its trigger.
    stopped = exists().where(work.c.customer_id == triggers.c.customer_id, not_(wanted))
    await session.execute(delete(triggers).where(triggers.c.kind == kind, stopped))
    await session.execute(
        insert_ignoring_duplicates(dialect_name(session), triggers).from_select(
            ["customer_id", "kind", "since"],
            select(work.c.customer_id, literal(kind, String), literal(now, DateTime))
            .where(wanted, not_(_held(work.c.customer_id, kind))),
        )
    )


@dataclass(frozen=True)
class EvaluatedTasks:
    """One customer re-evaluated in real time: the tasks its rules give and who would get them."""

    customer_id: int
    tasks: Sequence[TaskOutcome]
    manager_id: int | None
    team_id: int | None


async def write_realtime_tasks(
    session: AsyncSession,
    evaluated: Sequence[EvaluatedTasks],
    kinds: Collection[str],
    *,
    ruleset_id: int,
    now: datetime,
) -> int:
    """The same rule as a run, for the customers real-time routing re-evaluated: one read of their
    triggers, then (only when something changes) one statement per kind of write.  Returns the
    tasks created."""
    if not evaluated or not kinds:
        return 0
    ids = [item.customer_id for item in evaluated]
    found = await session.execute(
        select(triggers.c.customer_id, triggers.c.kind).where(triggers.c.customer_id.in_(ids), triggers.c.kind.in_(list(kinds)))
    )
    held: set[tuple[int, str]] = {(customer_id, kind) for customer_id, kind in found}
    wanted = {(item.customer_id, task.kind): (item, task) for item in evaluated for task in item.tasks}
    dialect = dialect_name(session)
    created = 0
    new = [pair for pair in wanted if pair not in held]
    if new:
        rows: list[dict[str, Any]] = []
        for pair in new:
            item, task = wanted[pair]
            rows.append({
                "customer_id": item.customer_id,
                "employee_id": item.manager_id,
                "team_id": item.team_id if item.manager_id is None else None,
                "kind": task.kind, "title": title_of(task.kind), "due_at": now + timedelta(days=task.due_days),
                "status": OPEN, "source": RULE, "rule": task.rule, "ruleset_id": ruleset_id, "run_id": None,
                "created_at": now,
            })
        result = await session.execute(insert_ignoring_duplicates(dialect, tasks), rows)
        created = max(affected_rows(result), 0)
        await session.execute(
            insert_ignoring_duplicates(dialect, triggers),
            [{"customer_id": customer_id, "kind": kind, "since": now} for customer_id, kind in new],
        )
    stopped = [pair for pair in held if pair not in wanted]
    if stopped:
        await session.execute(
            delete(triggers).where(tuple_(triggers.c.customer_id, triggers.c.kind).in_(stopped))
        )
    return created

