"""The data queries of docs/graphql.md.  Customers and feedback are limited to the caller's scope
(schema/permissions.py `scope`, domain.access.scope) in the statement that reads them."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from sqlalchemy import Select, select

from segmenta.domain import validation
from segmenta.domain.errors import UserError
from segmenta.dsl.diagnostics import Diagnostic
from segmenta.schema.context import Info
from segmenta.schema.customer_columns import page_columns
from segmenta.schema.errors import client_error
from segmenta.schema.filters import CustomerFilter, FeedbackFilter, customer_conditions, feedback_conditions, filtered
from segmenta.schema.ids import decode_id
from segmenta.schema.loaders import restricted
from segmenta.schema.orderings import CUSTOMER_ORDERINGS, NEWEST_FEEDBACK, CustomerOrder, CustomerOrderArgument
from segmenta.schema.pagination import (
    AfterArgument,
    Connection,
    FirstArgument,
    Ordering,
    counted,
    counter,
    fetch_page,
    fetch_paged,
    page_size,
    paged,
    to_connection,
)
from segmenta.schema.permissions import scope
from segmenta.schema.prebuilt import Prebuilt, PrebuiltFamily
from segmenta.schema.prefetch import child_fields, prefetch_customer_page
from segmenta.schema.stats import Stats
from segmenta.schema.types import Customer, Employee, Feedback, Segment, Team
from segmenta.schema.where import report_warnings, where_condition
from segmenta.storage import models
from segmenta.storage.guard import hold_expensive_slot

# Every customer in the caller's scope, and a page of them in an order (after a cursor, when the flag says so)
# with the columns its nodes read: rows of the table's columns, read like the entities (schema/loader_statements.py
# says why), only those the query reads (schema/customer_columns.py says why).
_CUSTOMER_COLUMNS = models.Customer.__table__.c
_EVERY_CUSTOMER = Prebuilt(lambda caller: restricted(select(*_CUSTOMER_COLUMNS), caller.customers()))
_EVERY_CUSTOMER_COUNT = Prebuilt(lambda caller: counted(_EVERY_CUSTOMER(caller)))
PageShape = tuple[Ordering, bool, frozenset[str] | None]
_EVERY_CUSTOMER_PAGED: PrebuiltFamily[PageShape, Select[Any]] = PrebuiltFamily(
    lambda shape, caller: paged(
        restricted(select(*_chosen_columns(shape[2])), caller.customers()), shape[0], shape[1]
    )
)


def _chosen_columns(names: frozenset[str] | None) -> list[Any]:
    """The customers table's columns named (all for None), in the table's order."""
    return list(_CUSTOMER_COLUMNS) if names is None else [column for column in _CUSTOMER_COLUMNS if column.key in names]


def _lookup_key(value: str, argument: str, column: str, model: type[models.Base]) -> str:
    """A key to look a row up by; one no row can hold (a NUL, too long) is a BAD_USER_INPUT error.

    Refused here rather than sent: PostgreSQL cannot even compare text holding a NUL.
    """
    try:
        return validation.lookup_text(value, argument, max_length=validation.column_length(model, column))
    except UserError as error:
        raise client_error(error.message) from None


@strawberry.type
class DataQuery:
    @strawberry.field(
        description=(
            "Customers, paged. `filter` takes simple field filters; `where` a rule-language condition "
            '(e.g. `size >= large and total_spent > 10k`); both must hold. `first` ≤ 100.'
        )
    )
    async def customers(
        self,
        info: Info,
        filter: Annotated[
            CustomerFilter | None, strawberry.argument(description="Simple field filters; every given one must hold.")
        ] = None,
        where: Annotated[
            str | None,
            strawberry.argument(
                description=(
                    "A rule-language condition over every field, metric, `attr.KEY` and stored segment, e.g. "
                    "`size >= large and total_spent > 10k` (at most 10,000 characters; 100 terms by default). Errors: "
                    "INVALID_CONDITION with the diagnostics; warnings come in the response's `extensions.warnings`."
                )
            ),
        ] = None,
        order_by: CustomerOrderArgument = CustomerOrder.NAME_ASC,
        first: FirstArgument = None,
        after: AfterArgument = None,
    ) -> Connection[Customer]:
        size = page_size(first)
        conditions = customer_conditions(filter)
        if where is not None:
            warnings: list[Diagnostic] = []
            conditions.append(await where_condition(info.context.db, where, info.context.now, warnings))
            report_warnings(info, "where", warnings)
        caller = scope(info)
        ordering = CUSTOMER_ORDERINGS[order_by]
        selected = info.selected_fields
        columns = page_columns(selected, ordering)
        count: Select[Any] | None = None
        if conditions:
            customers = restricted(filtered(select(*_CUSTOMER_COLUMNS), conditions), caller.bound().customers())
            chosen = customers.with_only_columns(*_chosen_columns(columns), maintain_column_froms=True)
            statement = paged(chosen, ordering, after is not None)
        else:
            # The usual page (no filter): its statements built once (schema/prebuilt.py).
            customers = _EVERY_CUSTOMER(caller)
            statement = _EVERY_CUSTOMER_PAGED((ordering, after is not None, columns), caller)
            count = _EVERY_CUSTOMER_COUNT(caller)
        db = info.context.db
        page = await fetch_paged(db, statement, ordering, size, after, caller.parameters(), columns=True)
        if columns is None:
            # Whole rows only: a row of some columns would fail another path's read of the same customer.
            for row in page.rows:
                info.context.loaders.customer.prime(row.id, row)
        await prefetch_customer_page(info, page.rows, selected)
        now = info.context.now
        count_rows = counter(db, customers, caller.parameters(), counting=count)
        return to_connection(page, ordering, lambda row: Customer.from_row(row, now), count_rows)

    @strawberry.field(description="The customer with this ID, or null (also when the caller may not see it).")
    async def customer(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="A Customer ID.")]
    ) -> Customer | None:
        key = decode_id(id, "Customer")
        loaders = info.context.loaders
        # Its team and manager, when selected, come in the customer's own statement (schema/prefetch.py).
        joined = not child_fields(info.selected_fields).isdisjoint(("team", "manager"))
        row = await (loaders.customer_with_relations if joined else loaders.customer).load(key)
        return Customer.from_row(row, info.context.now) if row is not None else None

    @strawberry.field(
        description="The customer with this external code, or null (also when the caller may not see it)."
    )
    async def customer_by_code(
        self,
        info: Info,
        code: Annotated[str, strawberry.argument(description="The customer's external code, exactly as stored.")],
    ) -> Customer | None:
        code = _lookup_key(code, "code", "code", models.Customer)
        statement = restricted(select(models.Customer).where(models.Customer.code == code), scope(info).customers())
        row = await info.context.db.scalar(statement)
        return Customer.from_row(row, info.context.now) if row is not None else None

    @strawberry.field(description="Every segment, by key.")
    async def segments(self, info: Info) -> list[Segment]:
        rows = await info.context.db.scalars(select(models.Segment).order_by(models.Segment.key))
        return [Segment.from_row(row) for row in rows]

    @strawberry.field(description="The segment with this key, or null.")
    async def segment(
        self, info: Info, key: Annotated[str, strawberry.argument(description="The segment's key.")]
    ) -> Segment | None:
        key = _lookup_key(key, "key", "key", models.Segment)
        row = await info.context.db.scalar(select(models.Segment).where(models.Segment.key == key))
        return Segment.from_row(row) if row is not None else None

    @strawberry.field(description="Every team, by key.")
    async def teams(self, info: Info) -> list[Team]:
        rows = await info.context.db.scalars(select(models.Team).order_by(models.Team.key))
        return [Team.from_row(row) for row in rows]

    @strawberry.field(description="The team with this key, or null.")
    async def team(
        self, info: Info, key: Annotated[str, strawberry.argument(description="The team's key.")]
    ) -> Team | None:
        key = _lookup_key(key, "key", "key", models.Team)
        row = await info.context.db.scalar(select(models.Team).where(models.Team.key == key))
        return Team.from_row(row) if row is not None else None

    @strawberry.field(description="Every employee, by name.")
    async def employees(
        self,
        info: Info,
        active: Annotated[
            bool | None,
            strawberry.argument(description="true: active employees only; false: inactive only; null: all."),
        ] = None,
    ) -> list[Employee]:
        statement = select(models.Employee).order_by(models.Employee.name, models.Employee.id)
        if active is not None:
            statement = statement.where(models.Employee.active.is_(active))
        rows = await info.context.db.scalars(statement)
        return [Employee.from_row(row) for row in rows]

    @strawberry.field(description="The employee with this ID, or null.")
    async def employee(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="An Employee ID.")]
    ) -> Employee | None:
        row = await info.context.loaders.employee.load(decode_id(id, "Employee"))
        return Employee.from_row(row) if row is not None else None

    @strawberry.field(description="Feedback, newest first (an agent: of their customers only). `first` ≤ 100.")
    async def feedback(
        self,
        info: Info,
        filter: Annotated[
            FeedbackFilter | None, strawberry.argument(description="Feedback filters; every given one must hold.")
        ] = None,
        first: FirstArgument = None,
        after: AfterArgument = None,
    ) -> Connection[Feedback]:
        size = page_size(first)
        statement = restricted(
            filtered(select(models.Feedback), feedback_conditions(filter)),
            scope(info).owned_by_visible(models.Feedback.customer_id),
        )
        db = info.context.db
        page = await fetch_page(db, statement, NEWEST_FEEDBACK, size, after)
        return to_connection(page, NEWEST_FEEDBACK, Feedback.from_row, counter(db, statement))

    @strawberry.field(description="Figures over the whole customer base (an agent: over their customers).")
    async def stats(self, info: Info) -> Stats:
        # Its figures scan every customer: one slot of the expensive-read share (storage/guard.py).
        async with info.context.db.exclusive() as session:
            await hold_expensive_slot(session)
        return Stats()
