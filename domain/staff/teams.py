"""Employees, teams and team membership."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain import validation as v
from segmenta.domain.access.tokens import principals
from segmenta.domain.errors import Conflict, NotFound, UserError
from segmenta.domain.staff.vocabulary import EMPLOYEE_LEVELS, TEAM_KINDS, TEAM_ROLES, TEAM_STRATEGIES
from segmenta.storage.models import Customer, Employee, Team, TeamMember

# Specialties are industries and regions are regions: the same length as those customer columns.
_SPECIALTY_LENGTH = v.column_length(Customer, "industry")
_REGION_LENGTH = v.column_length(Customer, "region")


def _not_null(validate: Callable[[Any], Any], field: str) -> Callable[[Any], Any]:
    def checked(value: Any) -> Any:
        if value is None:
            raise UserError(f"{field} cannot be empty", field=field, code="required")
        return validate(value)

    return checked


_EMPLOYEE_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "name": lambda value: v.required_text(value, "name", max_length=v.column_length(Employee, "name")),
    "email": lambda value: v.email(value, "email", max_length=v.column_length(Employee, "email"), required=True),
    "level": _not_null(lambda value: v.word(value, "level", EMPLOYEE_LEVELS), "level"),
    "specialties": lambda value: v.string_list(value, "specialties", max_length=_SPECIALTY_LENGTH),
    "regions": lambda value: v.string_list(value, "regions", max_length=_REGION_LENGTH),
    "capacity": lambda value: v.whole_number(value, "capacity", minimum=0),
    "active": _not_null(lambda value: v.boolean(value, "active"), "active"),
    "monthly_target": lambda value: v.optional_money(value, "monthly_target"),
}

_TEAM_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "key": lambda value: v.rule_key(value, "key", max_length=v.column_length(Team, "key")),
    "name": lambda value: v.required_text(value, "name", max_length=v.column_length(Team, "name")),
    "description": lambda value: v.text(value, "description", max_length=None),
    "kind": _not_null(lambda value: v.word(value, "kind", TEAM_KINDS), "kind"),
    "strategy": _not_null(lambda value: v.word(value, "strategy", TEAM_STRATEGIES), "strategy"),
    "monthly_target": lambda value: v.optional_money(value, "monthly_target"),
    "active": _not_null(lambda value: v.boolean(value, "active"), "active"),
}


def _validate(
    data: Mapping[str, Any], validators: Mapping[str, Callable[[Any], Any]], required: tuple[str, ...]
) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise UserError("input must be an object")
    v.reject_unknown_keys(data, validators)
    for field in required:
        if data.get(field) is None:
            raise UserError(f"{field} is required", field=field, code="required")
    return {field: validators[field](value) for field, value in data.items()}


async def _ensure_email_free(session: AsyncSession, email: str, *, except_id: int | None = None) -> None:
    query = select(Employee.id).where(Employee.email == email)
    if except_id is not None:
        query = query.where(Employee.id != except_id)
    if (await session.execute(query.limit(1))).first() is not None:
        raise Conflict(f"an employee with email {email!r} already exists", field="email")


async def create_employee(session: AsyncSession, data: Mapping[str, Any]) -> Employee:
    """Defaults: level junior, no specialties or regions, unlimited capacity, active."""
    values = _validate(data, _EMPLOYEE_VALIDATORS, ("name", "email"))
    values.setdefault("level", "junior")
    values.setdefault("specialties", [])
    values.setdefault("regions", [])
    values.setdefault("active", True)
    await _ensure_email_free(session, values["email"])
    employee = Employee(**values)
    session.add(employee)
    await v.flush_or_conflict(session, "email", f"an employee with email {values['email']!r} already exists")
    return employee


async def get_employee(session: AsyncSession, employee_id: int, *, field: str = "id") -> Employee:
    employee = await session.get(Employee, v.identifier(employee_id, field))
    if employee is None:
        raise NotFound("employee", employee_id, field=field)
    return employee


async def update_employee(session: AsyncSession, employee_id: int, patch: Mapping[str, Any]) -> Employee:
    values = _validate(patch, _EMPLOYEE_VALIDATORS, ())
    employee = await get_employee(session, employee_id)
    if "email" in values and values["email"] != employee.email:
        await _ensure_email_free(session, values["email"], except_id=employee.id)
    for field, value in values.items():
        setattr(employee, field, value)
    await v.flush_or_conflict(session, "email", f"an employee with email {employee.email!r} already exists")
    if values.get("active") is False:
        # An agent's token stops authenticating in this process at once (domain/access/tokens.py).
        principals.forget_employee(employee.id)
    return employee


async def _ensure_team_key_free(session: AsyncSession, key: str, *, except_id: int | None = None) -> None:
    query = select(Team.id).where(Team.key == key)
    if except_id is not None:
        query = query.where(Team.id != except_id)
    if (await session.execute(query.limit(1))).first() is not None:
        raise Conflict(f"a team with key {key!r} already exists", field="key")


async def create_team(session: AsyncSession, data: Mapping[str, Any]) -> Team:
    """Defaults: name = key, kind general, strategy round_robin."""
    values = _validate(data, _TEAM_VALIDATORS, ("key",))
    values.setdefault("name", values["key"])
    values.setdefault("kind", "general")
    values.setdefault("strategy", "round_robin")
    await _ensure_team_key_free(session, values["key"])
    team = Team(**values)
    session.add(team)
    await v.flush_or_conflict(session, "key", f"a team with key {values['key']!r} already exists")
    return team


async def get_team(session: AsyncSession, key: str, *, field: str = "key") -> Team:
    team = None
    if isinstance(key, str):
        team = (await session.execute(select(Team).where(Team.key == key))).scalar_one_or_none()
    if team is None:
        raise NotFound("team", key, field=field)
    return team


async def update_team(session: AsyncSession, key: str, patch: Mapping[str, Any]) -> Team:
    """`key` in the patch renames the team (rules naming the old key then report unknown-team).

    `active: false` deactivates the team: it takes no customers from then on (runs pass over the rules
    naming it, real-time routing leaves customers where they are); its customers keep it until the next
    run, which moves them on and reports them (docs/domain.md, "Inactive teams").  `active: true`
    reactivates it."""
    values = _validate(patch, _TEAM_VALIDATORS, ())
    team = await get_team(session, key)
    if "key" in values and values["key"] != team.key:
        await _ensure_team_key_free(session, values["key"], except_id=team.id)
    for field, value in values.items():
        setattr(team, field, value)
    await v.flush_or_conflict(session, "key", f"a team with key {team.key!r} already exists")
    return team


async def add_team_member(
    session: AsyncSession, team_key: str, employee_id: int, role: str | None = "member"
) -> TeamMember:
    """Add the employee to the team, or change their role when they are already a member."""
    checked_role = v.word(role, "role", TEAM_ROLES) or "member"
    team = await get_team(session, team_key, field="team_key")
    employee = await get_employee(session, employee_id, field="employee_id")
    member = (
        await session.execute(
            select(TeamMember).where(TeamMember.team_id == team.id, TeamMember.employee_id == employee.id)
        )
    ).scalar_one_or_none()
    if member is None:
        member = TeamMember(team_id=team.id, employee_id=employee.id, role=checked_role)
        session.add(member)
    else:
        member.role = checked_role
    await v.flush_or_conflict(
        session, "employee_id", f"employee {employee.id} was added to team {team.key!r} concurrently"
    )
    return member


async def remove_team_member(session: AsyncSession, team_key: str, employee_id: int) -> None:
    """Remove the membership.  Customers the employee manages keep their manager until routing moves them."""
    team = await get_team(session, team_key, field="team_key")
    employee = await get_employee(session, employee_id, field="employee_id")
    member = (
        await session.execute(
            select(TeamMember).where(TeamMember.team_id == team.id, TeamMember.employee_id == employee.id)
        )
    ).scalar_one_or_none()
    if member is None:
        raise UserError(
            f"employee {employee.id} is not a member of team {team.key!r}", field="employee_id", code="not_found"
        )
    await session.delete(member)
    await session.flush()


async def team_members(session: AsyncSession, team_key: str) -> list[tuple[TeamMember, Employee]]:
    """The team's members with their employees, leaders first, then by name."""
    team = await get_team(session, team_key)
    rows = await session.execute(
        select(TeamMember, Employee)
        .join(Employee, Employee.id == TeamMember.employee_id)
        .where(TeamMember.team_id == team.id)
        .order_by(TeamMember.role == "member", Employee.name, Employee.id)
    )
    return [(member, employee) for member, employee in rows.all()]
