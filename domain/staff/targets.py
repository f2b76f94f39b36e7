"""Per-month revenue targets of employees and teams (docs/performance.md, "Targets").

A target for a month overrides the owner's `monthly_target` for that month only.  Only managers
and admins set them: the role is checked here, so every caller (API, command line, scripts) gets
the same rule.  Setting an amount of null removes the month's target (monthly_target applies again).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain import validation as v
from segmenta.domain.errors import NotFound, UserError
from segmenta.domain.staff.performance import Month, parse_month
from segmenta.storage.models import Employee, PerformanceTarget, Team, utcnow

TARGET_SETTING_ROLES = ("admin", "manager")
FORBIDDEN = "forbidden"


@dataclass(frozen=True)
class TargetSet:
    """The outcome of set_target: the month's target now (None: removed) and what applies instead."""

    employee_id: int | None
    team_id: int | None
    month: Month
    amount: Decimal | None
    # The owner's monthly_target: what applies to the month when `amount` is None.
    monthly_target: Decimal | None


def ensure_may_set_targets(acting_role: str | None) -> None:
    if acting_role not in TARGET_SETTING_ROLES:
        raise UserError(
            f"forbidden: setting targets needs one of the roles {', '.join(TARGET_SETTING_ROLES)}", code=FORBIDDEN
        )


async def set_target(
    session: AsyncSession,
    acting_role: str | None,
    *,
    employee_id: int | None = None,
    team_id: int | None = None,
    month: Any,
    amount: Any,
) -> TargetSet:
    """Set (or with amount None remove) the target of one month of exactly one employee or team.

    Everything is checked before anything is written: the role, the owner, the month and the amount
    (0 or more, whole cents, at most the bound of a monthly_target)."""
    ensure_may_set_targets(acting_role)
    if (employee_id is None) == (team_id is None):
        raise UserError("give exactly one of employeeId and teamId", field="employeeId", code="invalid")
    the_month = parse_month(month, "month")
    exact = v.optional_money(amount, "amount")
    owner: Employee | Team | None
    if employee_id is not None:
        owner = await session.get(Employee, employee_id)
        if owner is None:
            raise NotFound("employee", employee_id, field="employeeId")
        which = PerformanceTarget.employee_id == employee_id
    else:
        owner = await session.get(Team, team_id)
        if owner is None:
            raise NotFound("team", team_id, field="teamId")
        which = PerformanceTarget.team_id == team_id
    month_text = str(the_month)
    if exact is None:
        await session.execute(delete(PerformanceTarget).where(which, PerformanceTarget.month == month_text))
    else:
        row = await session.scalar(select(PerformanceTarget).where(which, PerformanceTarget.month == month_text))
        if row is None:
            session.add(
                PerformanceTarget(
                    employee_id=employee_id, team_id=team_id, month=month_text, amount=exact, set_at=utcnow()
                )
            )
        else:
            row.amount = exact
            row.set_at = utcnow()
        await session.flush()
    return TargetSet(
        employee_id=employee_id,
        team_id=team_id,
        month=the_month,
        amount=exact,
        monthly_target=owner.monthly_target,
    )
