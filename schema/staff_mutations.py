"""Mutations on employees and teams."""

from __future__ import annotations

import strawberry
from sqlalchemy import select

from segmenta.domain.errors import UserError
from segmenta.domain.staff import teams as staff
from segmenta.schema.context import Info
from segmenta.schema.enums import TeamRole
from segmenta.schema.inputs import EmployeeInput, EmployeePatch, TeamInput, TeamPatch, as_create_data, as_patch
from segmenta.schema.payloads import (
    ArgumentError,
    EmployeePayload,
    TeamMemberPayload,
    TeamPayload,
    UserErrorType,
    in_transaction,
    input_id,
)
from segmenta.schema.permissions import CanManageStaff
from segmenta.schema.types import Employee, Team
from segmenta.storage import models


def _employee(row: models.Employee | None) -> Employee | None:
    return Employee.from_row(row) if row is not None else None


def _team(row: models.Team | None) -> Team | None:
    return Team.from_row(row) if row is not None else None


async def _team_key(info: Info, key: str | None, id: strawberry.ID | None) -> str:
    """The key of the existing team named by exactly one of the arguments `key` and `id`."""
    if (key is None) == (id is None):
        raise ArgumentError("give exactly one of `key` and `id`", field="key", code="invalid")
    session = info.context.session
    if key is not None:
        row = await session.scalar(select(models.Team).where(models.Team.key == key))
        if row is None:
            raise ArgumentError(f"team {key!r} does not exist", field="key", code="not_found")
        return row.key
    assert id is not None
    try:
        team_id = input_id(id, "Team", "id")
    except UserError as error:
        raise ArgumentError(error.message, field="id", code=error.code) from error
    found = await session.get(models.Team, team_id)
    if found is None:
        raise ArgumentError(f"team {id!r} does not exist", field="id", code="not_found")
    return found.key


@strawberry.type
class StaffMutation:
    @strawberry.mutation(permission_classes=[CanManageStaff])
    async def create_employee(self, info: Info, input: EmployeeInput) -> EmployeePayload:
        session = info.context.session
        row, errors = await in_transaction(
            info, lambda: staff.create_employee(session, as_create_data(input)), prefix="input"
        )
        return EmployeePayload(employee=_employee(row), user_errors=errors)

    @strawberry.mutation(permission_classes=[CanManageStaff])
    async def update_employee(self, info: Info, id: strawberry.ID, input: EmployeePatch) -> EmployeePayload:
        session = info.context.session

        async def work() -> models.Employee:
            return await staff.update_employee(session, input_id(id, "Employee", "id"), as_patch(input))

        row, errors = await in_transaction(info, work, prefix="input", arguments={"id"})
        return EmployeePayload(employee=_employee(row), user_errors=errors)

    @strawberry.mutation(permission_classes=[CanManageStaff])
    async def create_team(self, info: Info, input: TeamInput) -> TeamPayload:
        session = info.context.session
        row, errors = await in_transaction(
            info, lambda: staff.create_team(session, as_create_data(input)), prefix="input"
        )
        return TeamPayload(team=_team(row), user_errors=errors)

    @strawberry.mutation(permission_classes=[CanManageStaff], description="Name the team by `key` or by `id`.")
    async def update_team(
        self, info: Info, input: TeamPatch, key: str | None = None, id: strawberry.ID | None = None
    ) -> TeamPayload:
        session = info.context.session

        async def work() -> models.Team:
            return await staff.update_team(session, await _team_key(info, key, id), as_patch(input))

        row, errors = await in_transaction(info, work, prefix="input")
        return TeamPayload(team=_team(row), user_errors=errors)

    @strawberry.mutation(permission_classes=[CanManageStaff], description="Adding an existing member changes its role; role defaults to MEMBER.")
    async def add_team_member(
        self, info: Info, team_key: str, employee_id: strawberry.ID, role: TeamRole | None = None
    ) -> TeamMemberPayload:
        session = info.context.session

        async def work() -> models.TeamMember:
            return await staff.add_team_member(
                session, team_key, input_id(employee_id, "Employee", "employee_id"), (role or TeamRole.MEMBER).value
            )

        member, errors = await in_transaction(info, work)
        return await _member_payload(info, member, errors)

    @strawberry.mutation(permission_classes=[CanManageStaff])
    async def remove_team_member(self, info: Info, team_key: str, employee_id: strawberry.ID) -> TeamMemberPayload:
        session = info.context.session

        async def work() -> tuple[str, int]:
            employee = input_id(employee_id, "Employee", "employee_id")
            await staff.remove_team_member(session, team_key, employee)
            return team_key, employee

        done, errors = await in_transaction(info, work)
        if done is None:
            return TeamMemberPayload(team=None, employee=None, user_errors=errors)
        team = await info.context.db.scalar(select(models.Team).where(models.Team.key == done[0]))
        employee_row = await info.context.loaders.employee.load(done[1])
        return TeamMemberPayload(team=_team(team), employee=_employee(employee_row), user_errors=errors)


async def _member_payload(
    info: Info, member: models.TeamMember | None, errors: list[UserErrorType]
) -> TeamMemberPayload:
    if member is None:
        return TeamMemberPayload(team=None, employee=None, user_errors=errors)
    team = await info.context.loaders.team.load(member.team_id)
    employee = await info.context.loaders.employee.load(member.employee_id)
    return TeamMemberPayload(team=_team(team), employee=_employee(employee), user_errors=errors)
