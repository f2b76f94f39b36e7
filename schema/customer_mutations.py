"""Mutations on customers and their activity: purchases, interactions, feedback.

Recording activity also needs the customer to be in the caller's scope (domain.access.scope): an
agent recording for a customer that is not theirs gets a userError with code FORBIDDEN on
`input.customerId`, checked inside the mutation's transaction before anything is written."""

from __future__ import annotations

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
    @strawberry.mutation(permission_classes=[CanWriteCustomers])
    async def create_customer(self, info: Info, input: CustomerInput) -> CustomerPayload:
        session = info.context.session
        row, errors = await in_transaction(
            info, lambda: profiles.create_customer(session, as_create_data(input)), prefix="input"
        )
        return CustomerPayload(customer=_customer(info, row), user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanWriteCustomers],
        description="Change the given fields; see CustomerPatch for null and UNSET.",
    )
    async def update_customer(self, info: Info, id: strawberry.ID, input: CustomerPatch) -> CustomerPayload:
        session = info.context.session

        async def work() -> models.Customer:
            return await profiles.update_customer(session, input_id(id, "Customer", "id"), as_patch(input))

        row, errors = await in_transaction(info, work, prefix="input", arguments={"id"})
        return CustomerPayload(customer=_customer(info, row), user_errors=errors)

    @strawberry.mutation(permission_classes=[CanWriteCustomers])
    async def delete_customer(self, info: Info, id: strawberry.ID) -> DeleteCustomerPayload:
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

    @strawberry.mutation(permission_classes=[CanRecordActivity], description="Also updates the customer's metrics.")
    async def record_purchase(self, info: Info, input: PurchaseInput) -> PurchasePayload:
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

    @strawberry.mutation(permission_classes=[CanRecordActivity])
    async def record_interaction(self, info: Info, input: InteractionInput) -> InteractionPayload:
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
        permission_classes=[CanRecordActivity], description="Complaints start OPEN; other kinds start CLOSED."
    )
    async def submit_feedback(self, info: Info, input: FeedbackInput) -> FeedbackPayload:
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
        description="Move feedback along OPEN → IN_PROGRESS → RESOLVED → CLOSED (reopening allowed); `note` is kept.",
    )
    async def update_feedback_status(
        self, info: Info, id: strawberry.ID, status: FeedbackStatus, note: str | None = None
    ) -> FeedbackPayload:
        session = info.context.session

        async def work() -> models.Feedback:
            return await activity.update_feedback_status(session, input_id(id, "Feedback", "id"), status.value, note)

        row, errors = await in_transaction(info, work)
        return FeedbackPayload(feedback=Feedback.from_row(row) if row is not None else None, user_errors=errors)
