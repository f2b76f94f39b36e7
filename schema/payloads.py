"""Mutation payloads and the transaction wrapper every mutation runs in.

Bad input never raises a top-level error and never half-writes: a mutation runs
in its own transaction; a domain.errors.UserError (or a malformed ID) rolls the
transaction back and comes back as `userErrors { field message code }`, where
`field` is the camelCase path of the offending argument (`input.email`,
`customerIds`) and `code` an upper-case word (`CONFLICT`, `NOT_FOUND`, …).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import TypeVar

import strawberry

from segmenta.domain.errors import UserError
from segmenta.schema.context import Info
from segmenta.schema.ids import InvalidId, decode_id
from segmenta.schema.types import Customer, Employee, Feedback, Interaction, Purchase, Segment, Team
from segmenta.storage.engine import begin_writer
from segmenta.storage.models import utcnow

ResultT = TypeVar("ResultT")


@strawberry.type(name="UserError", description="Why a mutation did not change anything.")
class UserErrorType:
    field: str | None = strawberry.field(
        description="camelCase path of the offending argument, e.g. `input.email` or `customerIds`; null: the call.",
    )
    message: str = strawberry.field(description="What was wrong, in plain words.")
    code: str = strawberry.field(
        description=(
            "What kind of problem, in upper case: NOT_FOUND, CONFLICT, REQUIRED, INVALID, INVALID_ID, OUT_OF_RANGE, "
            "TOO_LONG, FORBIDDEN, …"
        ),
    )


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def field_path(field: str | None, prefix: str | None, arguments: Collection[str] = ()) -> str | None:
    """A domain field name (snake_case, maybe dotted) as the camelCase path of a GraphQL argument.

    Fields of an input object get the `prefix` (the input argument's name); names in `arguments` are
    arguments of the mutation itself and get none.
    """
    if field is None:
        return prefix
    path = ".".join(camel_case(part) for part in field.split("."))
    if prefix is None or field in arguments:
        return path
    return f"{prefix}.{path}"


class ArgumentError(UserError):
    """A user error about an argument of the mutation itself (never prefixed with the input's name)."""


def input_id(value: str, type_name: str, field: str) -> int:
    """The key of a global ID given in a mutation argument; a malformed one is a user error on `field`."""
    try:
        return decode_id(value, type_name)
    except InvalidId as error:
        raise UserError(str(error), field=field, code="invalid_id") from error


def input_ids(values: list[strawberry.ID], type_name: str, field: str) -> list[int]:
    return [input_id(value, type_name, field) for value in values]


async def in_transaction(
    info: Info,
    work: Callable[[], Awaitable[ResultT]],
    *,
    prefix: str | None = None,
    arguments: Collection[str] = (),
) -> tuple[ResultT | None, list[UserErrorType]]:
    """Run `work` in a transaction of its own: commit on success, roll back and report on a user error."""
    # The session alone: a read of the previous field (a sibling of a field that failed goes on
    # resolving after its error was reported) must not run on it while this transaction begins.
    async with info.context.db.exclusive() as session:
        if session.in_transaction():
            # Reads earlier in the request are not part of this mutation's transaction.
            await session.commit()
        try:
            await begin_writer(session)
            result = await work()
            await session.commit()
        except UserError as error:
            await session.rollback()
            problem = UserErrorType(
                field=field_path(error.field, None if isinstance(error, ArgumentError) else prefix, arguments),
                message=error.message,
                code=error.code.upper(),
            )
            return None, [problem]
        except BaseException:
            await session.rollback()
            raise
    # Later reads (the payload, the next mutation) must see the database as committed, not cached rows.
    session.expunge_all()
    info.context.loaders.clear()
    # Day-based metrics in the payload are measured after the write, not before it.
    info.context.now = utcnow()
    return result, []


@strawberry.type(description="The result of createCustomer or updateCustomer.")
class CustomerPayload:
    customer: Customer | None = strawberry.field(
        description="The customer as written (metrics and routing included); null when userErrors is not empty.",
    )
    user_errors: list[UserErrorType] = strawberry.field(description="Why nothing was changed; empty on success.")


@strawberry.type(description="The result of deleteCustomer.")
class DeleteCustomerPayload:
    deleted_id: strawberry.ID | None = strawberry.field(
        description="The ID of the deleted customer; null when userErrors is not empty.",
    )
    user_errors: list[UserErrorType] = strawberry.field(description="Why nothing was changed; empty on success.")


@strawberry.type(description="The result of recordPurchase.")
class PurchasePayload:
    purchase: Purchase | None = strawberry.field(
        description="The purchase recorded; null when userErrors is not empty.",
    )
    user_errors: list[UserErrorType] = strawberry.field(description="Why nothing was changed; empty on success.")


@strawberry.type(description="The result of recordInteraction.")
class InteractionPayload:
    interaction: Interaction | None = strawberry.field(
        description="The interaction recorded; null when userErrors is not empty.",
    )
    user_errors: list[UserErrorType] = strawberry.field(description="Why nothing was changed; empty on success.")


@strawberry.type(description="The result of submitFeedback or updateFeedbackStatus.")
class FeedbackPayload:
    feedback: Feedback | None = strawberry.field(
        description="The feedback as written; null when userErrors is not empty.",
    )
    user_errors: list[UserErrorType] = strawberry.field(description="Why nothing was changed; empty on success.")


@strawberry.type(description="The result of createEmployee or updateEmployee.")
class EmployeePayload:
    employee: Employee | None = strawberry.field(
        description="The employee as written; null when userErrors is not empty.",
    )
    user_errors: list[UserErrorType] = strawberry.field(description="Why nothing was changed; empty on success.")


@strawberry.type(description="The result of createTeam or updateTeam.")
class TeamPayload:
    team: Team | None = strawberry.field(
        description="The team as written; null when userErrors is not empty.",
    )
    user_errors: list[UserErrorType] = strawberry.field(description="Why nothing was changed; empty on success.")


@strawberry.type(description="The result of addTeamMember or removeTeamMember.")
class TeamMemberPayload:
    team: Team | None = strawberry.field(
        description="The team after the change; null when userErrors is not empty.",
    )
    employee: Employee | None = strawberry.field(
        description="The employee added or removed; null when userErrors is not empty.",
    )
    user_errors: list[UserErrorType] = strawberry.field(description="Why nothing was changed; empty on success.")


@strawberry.type(description="The result of a segment mutation.")
class SegmentPayload:
    segment: Segment | None = strawberry.field(
        description="The segment after the change; null when userErrors is not empty.",
    )
    user_errors: list[UserErrorType] = strawberry.field(description="Why nothing was changed; empty on success.")


@strawberry.type(description="The result of deleteSegment.")
class DeleteSegmentPayload:
    deleted_id: strawberry.ID | None = strawberry.field(
        description="The ID of the deleted segment; null when userErrors is not empty.",
    )
    deleted_key: str | None = strawberry.field(
        description="The key the deleted segment had; null when userErrors is not empty.",
    )
    user_errors: list[UserErrorType] = strawberry.field(description="Why nothing was changed; empty on success.")


@strawberry.type(description="The result of moveToSegment.")
class MoveToSegmentPayload:
    segment: Segment | None = strawberry.field(description="The segment the customers moved to.")
    from_segment: Segment | None = strawberry.field(description="The segment the customers left.")
    user_errors: list[UserErrorType] = strawberry.field(description="Why nothing was changed; empty on success.")
