"""Manual assignment: `assignManager`, `unlockAssignment` (docs/routing.md, 'Manual assignment').

``assign_manager`` makes an employee the account manager of some customers:

* the employee must exist and be active;
* the customer's team is kept when it is one of the employee's teams; otherwise
  the customer moves to the employee's *home team* — the first team where they
  are leader, else their first team (lowest id).  An employee in no team
  changes only the manager;
* capacity counts: an employee with a ``capacity`` cannot take customers beyond
  it (customers they already manage do not count twice) — the same limit the
  automatic strategies respect, so a manual decision cannot silently overload;
* ``lock`` (default true) sets ``assignment_locked``: rule runs and real-time
  evaluation then keep this team and manager.  With ``lock`` false the
  assignment stands until the customer's next change or the next run re-routes it;
* every customer whose team or manager changes gets an ``assignment_history``
  row with cause ``manual``.

``unlock_assignment`` clears the lock; the rules take over again at the
customer's next change or the next run (nothing moves at the moment of unlocking,
so an unlock is never a surprise re-route).

Both validate everything first (unknown ids are all named in one NotFound) and
write nothing on bad input.  Neither commits: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain import events
from segmenta.domain import validation as v
from segmenta.domain.customers.records import chunked
from segmenta.domain.errors import NotFound, UserError
from segmenta.storage.models import AssignmentHistory, Customer, Employee, Team, TeamMember, utcnow

MANUAL = "manual"
# One call handles at most this many customers (bounds the row locks one request takes).
MAX_CUSTOMERS = 1000


def _customer_ids(value: Any) -> list[int]:
    ids = v.unique_ids(value, "customer_ids")
    if not ids:
        raise UserError("give at least one customer id", field="customer_ids", code="required")
    if len(ids) > MAX_CUSTOMERS:
        raise UserError(f"at most {MAX_CUSTOMERS} customers per call", field="customer_ids", code="too_many")
    return ids


async def _locked_customers(session: AsyncSession, ids: Sequence[int]) -> list[Customer]:
    """The customers, in the order given, their rows locked; NotFound naming every unknown id."""
    found: dict[int, Customer] = {}
    for chunk in chunked(sorted(ids)):
        statement = (
            select(Customer)
            .where(Customer.id.in_(chunk))
            .order_by(Customer.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        found.update((customer.id, customer) for customer in (await session.scalars(statement)).all())
    missing = [customer_id for customer_id in ids if customer_id not in found]
    if missing:
        listed = ", ".join(str(customer_id) for customer_id in missing)
        raise UserError(f"no customer with id {listed}", field="customer_ids", code="not_found")
    return [found[customer_id] for customer_id in ids]


async def _active_employee(session: AsyncSession, employee_id: Any) -> Employee:
    checked = v.identifier(employee_id, "employee_id")
    employee = (
        await session.scalars(
            select(Employee).where(Employee.id == checked).with_for_update().execution_options(populate_existing=True)
        )
    ).one_or_none()
    if employee is None:
        raise NotFound("employee", employee_id, field="employee_id")
    if not employee.active:
        raise UserError(
            f"employee {employee.name} is inactive and cannot manage customers", field="employee_id", code="inactive"
        )
    return employee


async def employee_team_ids(session: AsyncSession, employee_id: int) -> list[int]:
    """The employee's teams, home team first: teams they lead, then the others, by team id."""
    rows = await session.execute(
        select(TeamMember.team_id)
        .join(Team, Team.id == TeamMember.team_id)
        .where(TeamMember.employee_id == employee_id)
        .order_by((TeamMember.role != "leader"), TeamMember.team_id)
    )
    return [team_id for (team_id,) in rows.all()]


async def _check_capacity(session: AsyncSession, employee: Employee, customers: Iterable[Customer]) -> None:
    if employee.capacity is None:
        return
    gained = sum(1 for customer in customers if customer.manager_id != employee.id)
    if not gained:
        return
    load = await session.scalar(select(func.count()).select_from(Customer).where(Customer.manager_id == employee.id)) or 0
    if load + gained > employee.capacity:
        raise UserError(
            f"employee {employee.name} manages {load} of at most {employee.capacity} customers; "
            f"{gained} more would exceed the capacity",
            field="employee_id",
            code="over_capacity",
        )


async def assign_manager(
    session: AsyncSession, customer_ids: Iterable[int], employee_id: int, *, lock: bool = True
) -> list[Customer]:
    """Make `employee_id` the manager of the customers (see the module docstring); returns them in order."""
    ids = _customer_ids(customer_ids)
    locking = v.boolean(lock, "lock")
    employee = await _active_employee(session, employee_id)
    customers = await _locked_customers(session, ids)
    await _check_capacity(session, employee, customers)
    teams = await employee_team_ids(session, employee.id)
    now = utcnow()
    history: list[dict[str, Any]] = []
    for customer in customers:
        team_after = customer.team_id if (customer.team_id in teams or not teams) else teams[0]
        if (customer.team_id, customer.manager_id) != (team_after, employee.id):
            history.append(
                {
                    "customer_id": customer.id,
                    "team_before_id": customer.team_id,
                    "team_after_id": team_after,
                    "manager_before_id": customer.manager_id,
                    "manager_after_id": employee.id,
                    "cause": MANUAL,
                    "run_id": None,
                    "rule": None,
                    "changed_at": now,
                }
            )
            customer.team_id = team_after
            customer.manager_id = employee.id
            customer.updated_at = now
        customer.assignment_locked = locking
        # A person's decision: an apply evaluated before it must not overwrite it (domain/routing/runs.py).
        customer.routing_version += 1
    await session.flush()
    if history:
        await session.execute(insert(AssignmentHistory.__table__), history)
        events.record_assignment_changes(session, history)  # published after the commit
    return customers


async def unlock_assignment(session: AsyncSession, customer_ids: Iterable[int]) -> list[Customer]:
    """Let the rules route these customers again (from their next change or the next run)."""
    ids = _customer_ids(customer_ids)
    customers = await _locked_customers(session, ids)
    for customer in customers:
        customer.assignment_locked = False
        customer.routing_version += 1
    await session.flush()
    return customers
