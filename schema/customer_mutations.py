"""Mutations on customers and their activity: purchases, interactions, feedback.

Recording activity also needs the customer to be in the caller's scope (domain.access.scope): an
agent recording for a customer that is not theirs gets a userError with code FORBIDDEN on
`input.customerId`, checked inside the mutation's transaction before anything is written."""

from __future__ import annotations

from typing import Annotated

import strawberry

from segmenta.domain.access.scope import ensure_may_act_on
from segmenta.domain.customers import activity, profiles
from segmenta.schema.context import Info
from segmenta.schema.enums import FeedbackStatus
from segmenta.schema.ids import encode_id
from segmenta.schema.inputs import (
    CustomerInput,
    CustomerPatch,
    FeedbackInput,
    InteractionInput,
    PurchaseInput,
    as_create_data,
    as_patch,
)
from segmenta.schema.payloads import (
    CustomerPayload,
    DeleteCustomerPayload,
    FeedbackPayload,
    InteractionPayload,
    PurchasePayload,
    in_transaction,
    input_id,
)
from segmenta.schema.permissions import CanHandleFeedback, CanRecordActivity, CanWriteCustomers, scope
from segmenta.schema.types import Customer, Feedback, Interaction, Purchase
from segmenta.storage import models


def _customer(info: Info, row: models.Customer | None) -> Customer | None:
    return Customer.from_row(row, info.context.now) if row is not None else None


async def _customer_to_act_on(info: Info, value: strawberry.ID) -> int:
    """The customer an activity is recorded for, refused when outside the caller's scope."""
    customer_id = input_id(value, "Customer", "customer_id")
    await ensure_may_act_on(info.context.session, scope(info), customer_id)
    return customer_id


@strawberry.type
class CustomerMutation:
    @strawberry.mutation(
        permission_classes=[CanWriteCustomers],
        description=(
            "Create a customer. With an active ruleset, it is routed in the same transaction (team, manager, "
            "dynamic segments, rule tags). Roles: admin, manager."
        ),
    )
    async def create_customer(
        self, info: Info, input: Annotated[CustomerInput, strawberry.argument(description="The new customer.")]
    ) -> CustomerPayload:
        session = info.context.session
        row, errors = await in_transaction(
            info, lambda: profiles.create_customer(session, as_create_data(input)), prefix="input"
        )
        return CustomerPayload(customer=_customer(info, row), user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanWriteCustomers],
        description=(
            "Change the fields given in `input`: fields left out stay, null clears (see CustomerPatch). With an "
            "active ruleset, the customer is re-routed in the same transaction. Roles: admin, manager."
        ),
    )
    async def update_customer(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The customer to change (a Customer ID).")],
        input: Annotated[CustomerPatch, strawberry.argument(description="The changes.")],
    ) -> CustomerPayload:
        session = info.context.session

        async def work() -> models.Customer:
            return await profiles.update_customer(session, input_id(id, "Customer", "id"), as_patch(input))

        row, errors = await in_transaction(info, work, prefix="input", arguments={"id"})
        return CustomerPayload(customer=_customer(info, row), user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanWriteCustomers],
        description=(
            "Delete a customer with its purchases, interactions, feedback, tags, attributes, segment memberships "
            "and assignment history. Roles: admin, manager."
        ),
    )
    async def delete_customer(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The customer (a Customer ID).")]
    ) -> DeleteCustomerPayload:
        session = info.context.session

        async def work() -> int:
            customer_id = input_id(id, "Customer", "id")
            await profiles.delete_customer(session, customer_id)
            return customer_id

        deleted, errors = await in_transaction(info, work)
        return DeleteCustomerPayload(
            deleted_id=strawberry.ID(encode_id("Customer", deleted)) if deleted is not None else None,
            user_errors=errors,
        )

    @strawberry.mutation(
        permission_classes=[CanRecordActivity],
        description=(
            "Record a purchase; the customer's metrics change in the same transaction, and it is re-routed."
            " Roles: admin, manager, agent (an agent only for their customers)."
        ),
    )
    async def record_purchase(
        self, info: Info, input: Annotated[PurchaseInput, strawberry.argument(description="The purchase.")]
    ) -> PurchasePayload:
        session = info.context.session

        async def work() -> models.Purchase:
            return await activity.record_purchase(
                session,
                customer_id=await _customer_to_act_on(info, input.customer_id),
                amount=input.amount,
                category=input.category,
                product=input.product,
                channel=input.channel,
                purchased_at=input.purchased_at,
            )

        row, errors = await in_transaction(info, work, prefix="input")
        return PurchasePayload(purchase=Purchase.from_row(row) if row is not None else None, user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanRecordActivity],
        description=(
            "Record a contact with a customer; the customer's metrics change in the same transaction, and it "
            "is re-routed. Roles: admin, manager, agent (an agent only for their customers)."
        ),
    )
    async def record_interaction(
        self, info: Info, input: Annotated[InteractionInput, strawberry.argument(description="The interaction.")]
    ) -> InteractionPayload:
        session = info.context.session

        async def work() -> models.Interaction:
            return await activity.record_interaction(
                session,
                customer_id=await _customer_to_act_on(info, input.customer_id),
                employee_id=input_id(input.employee_id, "Employee", "employee_id") if input.employee_id else None,
                kind=input.kind.value,
                occurred_at=input.occurred_at,
                summary=input.summary,
            )

        row, errors = await in_transaction(info, work, prefix="input")
        return InteractionPayload(
            interaction=Interaction.from_row(row) if row is not None else None, user_errors=errors
        )

    @strawberry.mutation(
        permission_classes=[CanRecordActivity],
        description=(
            "Record feedback: complaints start OPEN, other kinds CLOSED. The customer's metrics change in the "
            "same transaction, and it is re-routed. Roles: admin, manager, agent (an agent only for their customers)."
        ),
    )
    async def submit_feedback(
        self, info: Info, input: Annotated[FeedbackInput, strawberry.argument(description="The feedback.")]
    ) -> FeedbackPayload:
        session = info.context.session

        async def work() -> models.Feedback:
            return await activity.submit_feedback(
                session,
                customer_id=await _customer_to_act_on(info, input.customer_id),
                employee_id=input_id(input.employee_id, "Employee", "employee_id") if input.employee_id else None,
                kind=input.kind.value,
                score=input.score,
                comment=input.comment,
                channel=input.channel,
            )

        row, errors = await in_transaction(info, work, prefix="input")
        return FeedbackPayload(feedback=Feedback.from_row(row) if row is not None else None, user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanHandleFeedback],
        description=(
            "Move feedback along OPEN → IN_PROGRESS → RESOLVED → CLOSED (reopening allowed; see FeedbackStatus); "
            "a move not allowed is INVALID_TRANSITION. Keeps the customer's openComplaints in step. Roles: admin, "
            "manager."
        ),
    )
    async def update_feedback_status(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The feedback (a Feedback ID).")],
        status: Annotated[FeedbackStatus, strawberry.argument(description="The new status.")],
        note: Annotated[
            str | None, strawberry.argument(description="A note kept as statusNote; null keeps the previous note.")
        ] = None,
    ) -> FeedbackPayload:
        session = info.context.session

        async def work() -> models.Feedback:
            return await activity.update_feedback_status(session, input_id(id, "Feedback", "id"), status.value, note)

        row, errors = await in_transaction(info, work)
        return FeedbackPayload(feedback=Feedback.from_row(row) if row is not None else None, user_errors=errors)
