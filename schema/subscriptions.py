"""GraphQL subscriptions (docs/graphql.md): `evaluationRunProgress(runId)` and `assignmentChanged(customerId)`.

Both read the hub of domain/events.py, which the relay of domain/event_relay.py feeds with the
events of every other server process on the database, so a subscriber sees what any worker or
server did.  A subscriber that may have missed events (it fell behind, or the relay lost events)
gets one error with code EVENTS_LOST, and its subscription ends: `events_lost`.  Authentication is the schema's
(schema/permissions.py `Authentication`): over a websocket the token comes from
the upgrade request's Authorization header or the `connection_init` payload
(server.py); without one the subscription gets one UNAUTHENTICATED error.

Database reads here use a short session of their own: a subscription lives as
long as the connection, and must not hold a transaction open meanwhile.

An agent receives only the assignment changes of customers that were theirs
before the change or are theirs after it (domain.access.scope `Scope.change`): the
pages of a finished apply run carry that predicate in their one statement; a
real-time change is checked by one statement that evaluates the same rule over
the change's values (team membership as it is now), only for agents.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from typing import Annotated, Any, TypeVar, cast

import strawberry
from graphql import GraphQLError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.types.execution import PreExecutionError

from segmenta.domain.access.scope import Scope, change_is_visible
from segmenta.domain.events import AssignmentChangeEvent, EventsLost, RunProgressEvent, Subscriber, hub
from segmenta.domain.routing.run_tasks import follow_run
from segmenta.schema.context import Info
from segmenta.schema.enums import AssignmentCause, RunStatus, to_enum
from segmenta.schema.ids import decode_id, encode_id
from segmenta.schema.loaders import restricted
from segmenta.schema.permissions import scope
from segmenta.schema.routing_types import EvaluationRun
from segmenta.schema.timestamps import to_api
from segmenta.schema.types import Customer, TeamAndManagerMove
from segmenta.storage import models
from segmenta.storage.engine import session_factory

# History rows of a finished apply run read per query.
HISTORY_PAGE = 1000

First = TypeVar("First")
Second = TypeVar("Second")


def _engine(info: Info) -> AsyncEngine:
    return cast(AsyncEngine, info.context.session.bind)


@strawberry.type(description="How far an evaluation run has got; the last event has a status other than RUNNING.")
class EvaluationRunProgress:
    run_id: strawberry.ID = strawberry.field(description="The run's ID (an EvaluationRun ID).")
    step: str = strawberry.field(description="evaluate, compare, assign, write, or done.")
    done: int = strawberry.field(description="Units of this step done so far.")
    total: int = strawberry.field(description="Units of this step in all.")
    status: RunStatus | None = strawberry.field(
        description="RUNNING until the last event, which has SUCCEEDED or FAILED.",
    )
    row_id: strawberry.Private[int]

    @classmethod
    def from_event(cls, progress: RunProgressEvent) -> EvaluationRunProgress:
        return cls(
            run_id=strawberry.ID(encode_id("EvaluationRun", progress.run_id)),
            step=progress.step,
            done=progress.done,
            total=progress.total,
            status=to_enum(RunStatus, progress.status),
            row_id=progress.run_id,
        )

    @strawberry.field(description="The run as stored now (its summary once it has finished).")
    async def run(self, info: Info) -> EvaluationRun | None:
        async with session_factory(_engine(info))() as session:
            row = await session.get(models.EvaluationRun, self.row_id)
        return EvaluationRun.from_row(row) if row is not None else None


@strawberry.type(description="A committed change of a customer's team or manager.")
class AssignmentChangeNotice(TeamAndManagerMove):
    customer_id: strawberry.ID = strawberry.field(
        description="The customer's ID (a Customer ID), also when `customer` is null.",
    )
    cause: AssignmentCause | None = strawberry.field(
        description="What made the change: an apply RUN, REALTIME routing or a MANUAL assignManager.",
    )
    rule: str | None = strawberry.field(description="The deciding rule, when a rule made the change.")
    run_id: strawberry.ID | None = strawberry.field(description="The evaluation run, when a run made the change.")
    changed_at: datetime | None = strawberry.field(description="When the change was committed, UTC.")
    row: strawberry.Private[AssignmentChangeEvent]

    @classmethod
    def from_event(cls, change: AssignmentChangeEvent) -> AssignmentChangeNotice:
        return cls(
            customer_id=strawberry.ID(encode_id("Customer", change.customer_id)),
            cause=to_enum(AssignmentCause, change.cause),
            rule=change.rule,
            run_id=strawberry.ID(encode_id("EvaluationRun", change.run_id)) if change.run_id is not None else None,
            changed_at=to_api(change.changed_at),
            row=change,
        )

    @strawberry.field(description="Null when the customer has been deleted since, or is no longer the agent's.")
    async def customer(self, info: Info) -> Customer | None:
        statement = select(models.Customer).where(models.Customer.id == self.row.customer_id)
        async with session_factory(_engine(info))() as session:
            row = await session.scalar(restricted(statement, scope(info).customers()))
        return Customer.from_row(row, info.context.now) if row is not None else None


async def _either(first: Subscriber[First], second: Subscriber[Second]) -> AsyncIterator[First | Second]:
    """Events of two subscribers as they come."""
    waiting: dict[asyncio.Task[Any], Subscriber[Any]] = {}
    try:
        while True:
            for subscriber in (first, second):
                if subscriber not in waiting.values():
                    waiting[asyncio.ensure_future(subscriber.get())] = subscriber
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                del waiting[task]
                yield task.result()
    finally:
        for task in waiting:
            task.cancel()


async def _sees(info: Info, audience: Scope, change: AssignmentChangeEvent) -> bool:
    """Whether a real-time change concerns the caller (no statement for a caller who sees everything)."""
    if not audience.restricted:
        return True
    async with session_factory(_engine(info))() as session:
        return await change_is_visible(
            session,
            audience,
            change.team_before_id,
            change.manager_before_id,
            change.team_after_id,
            change.manager_after_id,
        )


async def _run_history(
    info: Info, run_id: int, customer_id: int | None, audience: Scope
) -> AsyncIterator[AssignmentChangeEvent]:
    """The assignment changes of a finished apply run (written by INSERT … SELECT, so read back), in pages,
    limited to the caller's scope."""
    history = models.AssignmentHistory
    factory = session_factory(_engine(info))
    async with factory() as session:
        mode = await session.scalar(select(models.EvaluationRun.mode).where(models.EvaluationRun.id == run_id))
    if mode != "apply":
        return
    last_id = 0
    while True:
        statement = (
            select(history)
            .where(history.run_id == run_id, history.cause == "run", history.id > last_id)
            .order_by(history.id)
            .limit(HISTORY_PAGE)
        )
        if customer_id is not None:
            statement = statement.where(history.customer_id == customer_id)
        statement = restricted(
            statement,
            audience.change(
                history.team_before_id, history.manager_before_id, history.team_after_id, history.manager_after_id
            ),
        )
        async with factory() as session:
            rows = (await session.scalars(statement)).all()
        for row in rows:
            yield AssignmentChangeEvent(
                customer_id=row.customer_id,
                team_before_id=row.team_before_id,
                team_after_id=row.team_after_id,
                manager_before_id=row.manager_before_id,
                manager_after_id=row.manager_after_id,
                cause=row.cause,
                rule=row.rule,
                run_id=row.run_id,
                changed_at=row.changed_at,
            )
        if len(rows) < HISTORY_PAGE:
            return
        last_id = rows[-1].id


def events_lost(error: EventsLost) -> GraphQLError:
    """The subscription's last message: events were missed, so re-subscribe and re-read the state."""
    return GraphQLError(error.message, extensions={"code": error.code, "retryable": True})


@strawberry.type(
    description=(
        "Live events over a websocket at /graphql (graphql-transport-ws or graphql-ws), from every server "
        "process on the database. A subscriber that missed events gets one error with code EVENTS_LOST and "
        "its subscription ends: subscribe again and re-read what it shows. Every role may subscribe."
    )
)
class Subscription:
    @strawberry.subscription(
        description="Progress of one run, ending with its final status; a finished run yields its final state once."
    )
    async def evaluation_run_progress(
        self,
        info: Info,
        run_id: Annotated[
            strawberry.ID,
            strawberry.argument(
                description="The run to follow (an EvaluationRun ID); an unknown run completes at once."
            ),
        ],
    ) -> AsyncGenerator[EvaluationRunProgress, None]:
        key = decode_id(run_id, "EvaluationRun")
        # Subscribe before reading the run, so an end between the read and the wait is not missed.
        with hub.run_progress.subscribe() as progress:
            async with session_factory(_engine(info))() as session:
                row = await session.get(models.EvaluationRun, key)
            if row is None:
                return
            if row.status != "running":
                yield EvaluationRunProgress.from_event(RunProgressEvent(key, "done", 1, 1, row.status))
                return
            # Polls the row when events stop: the run may end where no event reaches this process.
            try:
                async for item in follow_run(session_factory(_engine(info)), key, progress):
                    yield EvaluationRunProgress.from_event(item)
            except EventsLost as error:
                raise events_lost(error) from error

    @strawberry.subscription(
        description=(
            "Committed team or manager changes (real-time, manual, apply runs); optionally of one customer. "
            "An agent gets the changes of customers that were theirs before or are theirs after the change."
        )
    )
    async def assignment_changed(
        self,
        info: Info,
        customer_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Only this customer's changes (a Customer ID); null: every customer."),
        ] = None,
    ) -> AsyncGenerator[AssignmentChangeNotice, None]:
        wanted = decode_id(customer_id, "Customer") if customer_id is not None else None
        audience = scope(info)
        with hub.assignments.subscribe() as changes, hub.run_progress.subscribe() as progress:
            try:
                async for item in _either(changes, progress):
                    if isinstance(item, RunProgressEvent):
                        if item.status != "succeeded":
                            continue
                        async for change in _run_history(info, item.run_id, wanted, audience):
                            yield AssignmentChangeNotice.from_event(change)
                    elif (wanted is None or item.customer_id == wanted) and await _sees(info, audience, item):
                        yield AssignmentChangeNotice.from_event(item)
            except EventsLost as error:
                raise events_lost(error) from error


async def refusals_as_results(results: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
    """Strawberry's `stream` lets an error raised in a schema extension's `on_operation` (our
    Authentication refusal) escape instead of yielding it; turn it into one error result with no
    data, which the websocket protocols send to the client as the operation's error."""
    delivered = False
    try:
        async for result in results:
            delivered = True
            yield result
    except GraphQLError as error:
        if delivered:
            raise
        yield PreExecutionError(data=None, errors=[error])
    finally:
        await results.aclose()
