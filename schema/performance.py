"""`performanceReview(month)` and `setTarget` (docs/performance.md): thin resolvers over
domain/staff/review.py and domain/staff/targets.py, which check the roles themselves too."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import strawberry

from segmenta.domain.errors import UserError
from segmenta.domain.staff import review, targets
from segmenta.schema.context import Info
from segmenta.schema.enums import EmployeeLevel, to_enum
from segmenta.schema.errors import FORBIDDEN, client_error
from segmenta.schema.payloads import ArgumentError, UserErrorType, in_transaction, input_id
from segmenta.schema.performance_types import PerformanceType
from segmenta.schema.permissions import CanReviewPerformance, CanSetTargets
from segmenta.schema.types import Employee, Team, employee_of, team_of


@strawberry.type(description="One employee's line in a team's league table.")
class PerformanceReviewRow:
    rank: int = strawberry.field(description="1 for the highest attainment in the team (then revenue, then name).")
    employee: Employee = strawberry.field(description="The employee.")
    performance: PerformanceType = strawberry.field(description="The employee's figures for the reviewed month.")
    suggested_level: EmployeeLevel | None = strawberry.field(
        description=(
            "The level the policy suggests (the next one), for a person to confirm with updateEmployee; null: "
            "no change suggested. Nothing is ever promoted automatically."
        )
    )
    reason: str = strawberry.field(description="Why the policy suggests it, or why not.")


@strawberry.type(description="One team's league table for the reviewed month.")
class TeamPerformanceReview:
    team: Team = strawberry.field(description="The team.")
    performance: PerformanceType | None = strawberry.field(description="The team's own figures for the month.")
    rows: list[PerformanceReviewRow] = strawberry.field(description="Its members, best first.")


@strawberry.type(description="The month's league table per team, with the levels the promotion policy suggests.")
class PerformanceReview:
    month: str = strawberry.field(description="The reviewed month, `YYYY-MM`.")
    policy: str = strawberry.field(
        description=(
            "The promotion policy in words (SEGMENTA_REVIEW_ATTAINMENT, SEGMENTA_REVIEW_MONTHS, "
            "SEGMENTA_REVIEW_SATISFACTION; docs/performance.md)."
        )
    )
    teams: list[TeamPerformanceReview] = strawberry.field(description="Every team (or the one asked for), by key.")


@strawberry.type(description="A month's target of an employee or a team.")
class Target:
    month: str = strawberry.field(description="The month, `YYYY-MM`.")
    amount: Decimal | None = strawberry.field(description="The target set for the month; null: none (removed).")
    effective_amount: Decimal | None = strawberry.field(
        description="What applies to the month: `amount`, else the owner's monthlyTarget; null when neither."
    )
    employee_id: strawberry.Private[int | None]
    team_id: strawberry.Private[int | None]

    @strawberry.field(description="The employee the target is for; null for a team's target.")
    async def employee(self, info: Info) -> Employee | None:
        return await employee_of(info, self.employee_id)

    @strawberry.field(description="The team the target is for; null for an employee's target.")
    async def team(self, info: Info) -> Team | None:
        return await team_of(info, self.team_id)


@strawberry.type(description="The result of setTarget.")
class SetTargetPayload:
    target: Target | None = strawberry.field(description="The target as set; null when userErrors is not empty.")
    user_errors: list[UserErrorType] = strawberry.field(description="Why nothing was changed; empty on success.")


@strawberry.type
class PerformanceQuery:
    @strawberry.field(
        permission_classes=[CanReviewPerformance],
        description=(
            "The month's league table of each team (or of `team`), each member with the level the promotion "
            "policy suggests, to confirm by hand with updateEmployee. Role: admin or manager."
        ),
    )
    async def performance_review(
        self,
        info: Info,
        month: Annotated[str, strawberry.argument(description="The reviewed month, `YYYY-MM` (UTC).")],
        team: Annotated[str | None, strawberry.argument(description="Only this team (its key).")] = None,
    ) -> PerformanceReview:
        principal = info.context.principal
        role = principal.role if principal is not None else None
        policy = review.review_policy()
        try:
            async with info.context.db.exclusive() as session:
                reviews = await review.performance_review(session, role, month, info.context.now, team_key=team, policy=policy)
        except UserError as error:
            code = FORBIDDEN if error.code == review.FORBIDDEN else "BAD_USER_INPUT"
            raise client_error(error.message, code=code, field=error.field, reason=error.code.upper()) from None
        return PerformanceReview(
            month=str(month),
            policy=policy.describe(),
            teams=[
                TeamPerformanceReview(
                    team=Team.from_row(entry.team),
                    performance=None if entry.performance is None else PerformanceType.of(entry.performance),
                    rows=[
                        PerformanceReviewRow(
                            rank=row.rank,
                            employee=Employee.from_row(row.employee),
                            performance=PerformanceType.of(row.performance),
                            suggested_level=to_enum(EmployeeLevel, row.suggested_level),
                            reason=row.reason,
                        )
                        for row in entry.rows
                    ],
                )
                for entry in reviews
            ],
        )


@strawberry.type
class PerformanceMutation:
    @strawberry.mutation(
        permission_classes=[CanSetTargets],
        description=(
            "Set the revenue target of one month for an employee or a team (exactly one of `employeeId` and "
            "`teamId`); it overrides monthlyTarget for that month. `amount: null` removes it. Role: admin or manager."
        ),
    )
    async def set_target(
        self,
        info: Info,
        month: Annotated[str, strawberry.argument(description="The month, `YYYY-MM` (UTC).")],
        amount: Annotated[Decimal | None, strawberry.argument(description="The target; null removes the month's target.")],
        employee_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="The employee (an Employee ID); or give teamId.")
        ] = None,
        team_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="The team (a Team ID); or give employeeId.")
        ] = None,
    ) -> SetTargetPayload:
        session = info.context.session
        principal = info.context.principal
        role = principal.role if principal is not None else None

        async def work() -> targets.TargetSet:
            try:
                employee = None if employee_id is None else input_id(employee_id, "Employee", "employeeId")
                team = None if team_id is None else input_id(team_id, "Team", "teamId")
            except UserError as error:
                raise ArgumentError(error.message, field=error.field, code=error.code) from error
            return await targets.set_target(
                session, role, employee_id=employee, team_id=team, month=month, amount=amount
            )

        done, errors = await in_transaction(info, work, arguments={"month", "amount", "employeeId", "teamId"})
        # Figures read later in the request must see the new target.
        info.context.performance_loaders = None
        if done is None:
            return SetTargetPayload(target=None, user_errors=errors)
        return SetTargetPayload(
            target=Target(
                month=str(done.month),
                amount=done.amount,
                effective_amount=done.amount if done.amount is not None else done.monthly_target,
                employee_id=done.employee_id,
                team_id=done.team_id,
            ),
            user_errors=errors,
        )
