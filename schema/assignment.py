"""Manual assignment and explanations in GraphQL (docs/routing.md): `AssignmentQuery` (`explain`) and
`AssignmentMutation` (`assignManager`, `unlockAssignment`), merged into the root types by
schema/__init__.py.  Thin over domain.routing.manual_assignment and domain.routing.explanations.

Roles: assigning and unlocking need admin or manager.  `explain` is a read: every role
may call it, an agent only for a customer in their scope (domain.access.scope).
"""

from __future__ import annotations

from typing import Annotated

import strawberry

from segmenta.domain.errors import UserError
from segmenta.domain.routing import explanations as explanation_service
from segmenta.domain.routing import manual_assignment
from segmenta.schema.context import Info
from segmenta.schema.errors import FORBIDDEN, client_error
from segmenta.schema.ids import decode_id
from segmenta.schema.payloads import UserErrorType, in_transaction, input_id, input_ids
from segmenta.schema.permissions import CanAssign, scope
from segmenta.schema.routing import MAX_SOURCE_LENGTH, OptionalSourceArgument
from segmenta.schema.types import Customer, Employee, Team
from segmenta.storage import models

RULE_ERRORS = "RULE_ERRORS"


@strawberry.type(description="One statement of the rule file for the customer.")
class RuleExplanation:
    label: str = strawberry.field(description="The rule's label, `line N` when unlabelled, or `segment K`.")
    line: int = strawberry.field(description="The line the statement starts on (1-based).")
    matched: bool = strawberry.field(
        description="True when the customer matches the statement's condition.",
    )
    detail: str = strawberry.field(
        description="Why it matched, or the first comparison that failed with the actual value."
    )
    kind: str = strawberry.field(description="`segment` for a segment definition, `rule` otherwise.")
    decided: bool = strawberry.field(description="This rule decided the team.")


@strawberry.type(description="Why a customer lands where it does under a ruleset.")
class Explanation:
    deciding_rule: str | None = strawberry.field(
        description="The label of the rule that decides the team, or `line N`."
    )
    segments: list[str] = strawberry.field(description="The dynamic segments the rules give, by key.")
    tags: list[str] = strawberry.field(description="The tags the rules give.")
    notes: list[str] = strawberry.field(
        description="Current assignment and the lock, strategy and capacity effects on the manager."
    )
    text: str = strawberry.field(description="The whole explanation as readable lines.")
    rules: list[RuleExplanation] = strawberry.field(
        description="Every statement of the rule file, in order, with whether it matched.",
    )
    rule_team_key: str | None = strawberry.field(
        description="The team the rules choose (a locked customer keeps its own)."
    )
    result: strawberry.Private[explanation_service.CustomerExplanation]

    @strawberry.field(description="The team the customer ends up in (a locked customer keeps its team).")
    def team(self) -> Team | None:
        return Team.from_row(self.result.team) if self.result.team is not None else None

    @strawberry.field(description="The manager the customer keeps or would get; null when none.")
    def manager(self) -> Employee | None:
        return Employee.from_row(self.result.manager) if self.result.manager is not None else None

    @strawberry.field(description="The customer explained.")
    def customer(self, info: Info) -> Customer:
        return Customer.from_row(self.result.customer, info.context.now)

    @classmethod
    def from_result(cls, result: explanation_service.CustomerExplanation) -> Explanation:
        return cls(
            deciding_rule=result.deciding_rule,
            segments=list(result.segments),
            tags=list(result.tags),
            notes=list(result.notes),
            text=result.text,
            rules=[
                RuleExplanation(
                    label=trace.label,
                    line=trace.line,
                    matched=trace.matched,
                    detail=trace.detail,
                    kind=trace.kind,
                    decided=trace.decided,
                )
                for trace in result.rules
            ],
            rule_team_key=result.rule_team_key,
            result=result,
        )


async def _may_see(info: Info, customer_id: int) -> bool:
    """The caller's scope covers the customer (the scoped customer loader finds it); always true for
    the roles that see every customer, so for them a missing customer still reads as null."""
    if not scope(info).restricted:
        return True
    return await info.context.loaders.customer.load(customer_id) is not None


@strawberry.type
class AssignmentQuery:
    @strawberry.field(
        description=(
            "Explain a customer's routing: with the saved ruleset `rulesetId`, the unsaved rules `source`, "
            "or (default) the active ruleset. Null when there is no such customer. Rules with errors give an "
            "error with code RULE_ERRORS and the diagnostics in its extensions. Every role; an agent only for "
            "their customers (FORBIDDEN otherwise)."
        )
    )
    async def explain(
        self,
        info: Info,
        customer_id: Annotated[strawberry.ID, strawberry.argument(description="The customer (a Customer ID).")],
        ruleset_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="A saved Ruleset ID; default: the active ruleset."),
        ] = None,
        rule_source: OptionalSourceArgument = None,
    ) -> Explanation | None:
        customer_key = decode_id(customer_id, "Customer")
        ruleset_key = decode_id(ruleset_id, "Ruleset") if ruleset_id is not None else None
        if rule_source is not None and len(rule_source) > MAX_SOURCE_LENGTH:
            raise client_error(f"rule source too long ({len(rule_source)} characters; at most {MAX_SOURCE_LENGTH})")
        if not await _may_see(info, customer_key):
            raise client_error("forbidden: an agent can explain only their own and their teams' customers", FORBIDDEN)
        try:
            async with info.context.db.exclusive() as session:
                result = await explanation_service.explain_customer(
                    session, customer_key, ruleset_id=ruleset_key, source=rule_source, as_of=info.context.now
                )
        except explanation_service.RulesHaveErrors as error:
            raise client_error(
                error.message, RULE_ERRORS, diagnostics=[d.to_dict() for d in error.diagnostics], field=error.field
            ) from None
        except UserError as error:
            if error.code == "not_found" and error.field == "customer_id":
                return None
            raise client_error(error.message, field=error.field, reason=error.code.upper()) from None
        return Explanation.from_result(result)


@strawberry.type(description="The result of assignManager or unlockAssignment.")
class AssignmentPayload:
    customers: list[Customer] = strawberry.field(
        description="The customers as changed; empty when userErrors is not empty.",
    )
    user_errors: list[UserErrorType] = strawberry.field(description="Why nothing was changed; empty on success.")


def _customers(info: Info, rows: list[models.Customer] | None) -> list[Customer]:
    return [Customer.from_row(row, info.context.now) for row in rows or []]


@strawberry.type
class AssignmentMutation:
    @strawberry.mutation(
        permission_classes=[CanAssign],
        description=(
            "Make an employee the account manager of the customers. A customer outside the employee's teams moves "
            "to the employee's home team (the team they lead, else their first). `lock` (default true) keeps the "
            "assignment through rule runs and real-time routing. Refused for an inactive employee or beyond capacity. "
            "Roles: admin, manager."
        ),
    )
    async def assign_manager(
        self,
        info: Info,
        customer_ids: Annotated[list[strawberry.ID], strawberry.argument(description="The customers (Customer IDs).")],
        employee_id: Annotated[strawberry.ID, strawberry.argument(description="The new manager (an Employee ID).")],
        lock: Annotated[
            bool, strawberry.argument(description="Keep the assignment through rule runs and real-time routing.")
        ] = True,
    ) -> AssignmentPayload:
        session = info.context.session

        async def work() -> list[models.Customer]:
            ids = input_ids(customer_ids, "Customer", "customer_ids")
            employee = input_id(employee_id, "Employee", "employee_id")
            return await manual_assignment.assign_manager(session, ids, employee, lock=lock)

        rows, errors = await in_transaction(info, work, arguments={"customer_ids", "employee_id", "lock"})
        return AssignmentPayload(customers=_customers(info, rows), user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanAssign],
        description=(
            "Let the rules route these customers again, from their next change or the next run. Roles: admin, "
            "manager."
        ),
    )
    async def unlock_assignment(
        self,
        info: Info,
        customer_ids: Annotated[list[strawberry.ID], strawberry.argument(description="The customers (Customer IDs).")],
    ) -> AssignmentPayload:
        session = info.context.session

        async def work() -> list[models.Customer]:
            return await manual_assignment.unlock_assignment(session, input_ids(customer_ids, "Customer", "customer_ids"))

        rows, errors = await in_transaction(info, work, arguments={"customer_ids"})
        return AssignmentPayload(customers=_customers(info, rows), user_errors=errors)
