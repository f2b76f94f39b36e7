"""Mutations on employees and teams."""

from __future__ import annotations

from typing import Annotated

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
    @strawberry.mutation(permission_classes=[CanManageStaff], description="Create an employee. Role: admin.")
    async def create_employee(
        self, info: Info, input: Annotated[EmployeeInput, strawberry.argument(description="The new employee.")]
    ) -> EmployeePayload:
        session = info.context.session
        row, errors = await in_transaction(
            info, lambda: staff.create_employee(session, as_create_data(input)), prefix="input"
        )
        return EmployeePayload(employee=_employee(row), user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanManageStaff],
        description=(
            "Change the fields given in `input`: fields left out stay, null clears (see EmployeePatch). Role: "
            "admin."
        ),
    )
    async def update_employee(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The employee to change (an Employee ID).")],
        input: Annotated[EmployeePatch, strawberry.argument(description="The changes.")],
    ) -> EmployeePayload:
        session = info.context.session

        async def work() -> models.Employee:
            return await staff.update_employee(session, input_id(id, "Employee", "id"), as_patch(input))

        row, errors = await in_transaction(info, work, prefix="input", arguments={"id"})
        return EmployeePayload(employee=_employee(row), user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanManageStaff],
        description="Create a team; rules route customers to it by its key (`-> team KEY`). Role: admin.",
    )
    async def create_team(
        self, info: Info, input: Annotated[TeamInput, strawberry.argument(description="The new team.")]
    ) -> TeamPayload:
        session = info.context.session
        row, errors = await in_transaction(
            info, lambda: staff.create_team(session, as_create_data(input)), prefix="input"
        )
        return TeamPayload(team=_team(row), user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanManageStaff],
        description=(
            "Change the fields given in `input` of the team named by `key` or by `id` (exactly one). Role: admin."
        ),
    )
    async def update_team(
        self,
        info: Info,
        input: Annotated[TeamPatch, strawberry.argument(description="The changes.")],
        key: Annotated[str | None, strawberry.argument(description="The team's current key (or give `id`).")] = None,
        id: Annotated[
            strawberry.ID | None, strawberry.argument(description="The team's ID (or give `key`).")
        ] = None,
    ) -> TeamPayload:
        session = info.context.session

        async def work() -> models.Team:
            return await staff.update_team(session, await _team_key(info, key, id), as_patch(input))

        row, errors = await in_transaction(info, work, prefix="input")
        return TeamPayload(team=_team(row), user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanManageStaff],
        description="Add an employee to a team; adding an existing member changes its role. Role: admin.",
    )
    async def add_team_member(
        self,
        info: Info,
        team_key: Annotated[str, strawberry.argument(description="The team's key.")],
        employee_id: Annotated[strawberry.ID, strawberry.argument(description="The employee (an Employee ID).")],
        role: Annotated[
            TeamRole | None, strawberry.argument(description="The role in the team; default MEMBER.")
        ] = None,
    ) -> TeamMemberPayload:
        session = info.context.session

        async def work() -> models.TeamMember:
            return await staff.add_team_member(
                session, team_key, input_id(employee_id, "Employee", "employee_id"), (role or TeamRole.MEMBER).value
            )

        member, errors = await in_transaction(info, work)
        return await _member_payload(info, member, errors)

    @strawberry.mutation(
        permission_classes=[CanManageStaff],
        description=(
            "Remove an employee from a team. The customers they manage keep them as manager until routing moves "
            "those customers to another team. Role: admin."
        ),
    )
    async def remove_team_member(
        self,
        info: Info,
        team_key: Annotated[str, strawberry.argument(description="The team's key.")],
        employee_id: Annotated[strawberry.ID, strawberry.argument(description="The employee (an Employee ID).")],
    ) -> TeamMemberPayload:
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
