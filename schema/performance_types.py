"""The `Performance` type and the resolvers of `Employee.performance`, `Employee.performanceSeries`,
`Team.performance` and `Team.performanceSeries` (docs/performance.md).

Every figure is defined in domain/staff/performance.py and computed by one statement per page of
owners (schema/performance_loaders.py), holding only the groups of figures the query selects.  Who may read them: admins, managers and viewers every
owner's; an agent their own employee's figures only (null elsewhere).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import strawberry
from strawberry.types.nodes import SelectedField

from segmenta.domain.errors import UserError
from segmenta.domain.staff import performance as figures
from segmenta.schema.context import Info
from segmenta.schema.errors import client_error
from segmenta.schema.performance_loaders import PerformanceLoaders
from segmenta.storage.performance_sql import CUSTOMERS, FEEDBACK, INTERACTIONS, RESOLUTIONS, SALES, TASKS


@strawberry.type(
    name="Performance",
    description=(
        "The figures of an employee or a team over a period of whole months in UTC (docs/performance.md): each "
        "purchase, survey, complaint and interaction counts for whoever managed the customer when it happened."
    ),
)
class PerformanceType:
    from_month: str = strawberry.field(name="from", description="The period's first month, `YYYY-MM`.")
    to_month: str = strawberry.field(name="to", description="The period's last month, `YYYY-MM` (included).")
    start: datetime = strawberry.field(description="The period's first instant, UTC.")
    end: datetime = strawberry.field(description="The first instant after the period, UTC.")
    revenue: Decimal = strawberry.field(
        description="The sum of the purchases in the period of the customers managed at the time of each purchase."
    )
    purchase_count: int = strawberry.field(description="How many purchases make up `revenue`.")
    target: Decimal | None = strawberry.field(
        description=(
            "The period's target: for each month the target set with setTarget, else the monthly target; null "
            "when no month has either."
        )
    )
    attainment: float | None = strawberry.field(
        description="revenue ÷ target (1.0 is 100 %); null without a target or with a zero one."
    )
    customers_at_start: int = strawberry.field(description="Customers managed when the period began.")
    customers_at_end: int = strawberry.field(description="Customers managed when the period ended.")
    customers_won: int = strawberry.field(description="Customers managed at the end but not at the start.")
    customers_lost: int = strawberry.field(description="Customers managed at the start but not at the end.")
    customers_retained: int = strawberry.field(
        description=(
            "Customers managed at the start and at the end with a purchase in the 12 months up to the period's end."
        )
    )
    retention_rate: float | None = strawberry.field(
        description="customersRetained ÷ customersAtStart (0 to 1); null when there were none at the start."
    )
    survey_count: int = strawberry.field(description="Survey answers in the period.")
    average_satisfaction: float | None = strawberry.field(
        description="The mean survey score (1–5) in the period; null without surveys."
    )
    nps_responses: int = strawberry.field(description="NPS answers in the period.")
    nps: float | None = strawberry.field(
        description="Net promoter score of the period: % promoters (9–10) − % detractors (0–6), −100 to 100; null without answers."
    )
    complaints_received: int = strawberry.field(description="Complaints made in the period.")
    complaints_resolved: int = strawberry.field(description="Complaints resolved or closed in the period.")
    median_resolution_hours: float | None = strawberry.field(
        description="The median time from complaint to resolution of the complaints resolved in the period, in hours."
    )
    interactions: int = strawberry.field(description="Interactions (visits, calls, …) with the customers in the period.")
    tasks_due: int = strawberry.field(description="Follow-up tasks due in the period, cancelled ones left out.")
    tasks_done_on_time: int = strawberry.field(description="Of those, the ones completed by their due time.")
    tasks_overdue: int = strawberry.field(
        description="Of those, the ones whose due time has passed without completion by then (open, or done late)."
    )
    task_completion_rate: float | None = strawberry.field(
        description="tasksDoneOnTime ÷ tasksDue (0 to 1); null when none was due."
    )

    @classmethod
    def of(cls, performance: figures.Performance) -> PerformanceType:
        period = performance.period
        return cls(
            from_month=str(period.first),
            to_month=str(period.last),
            start=period.start,
            end=period.end,
            revenue=performance.revenue,
            purchase_count=performance.purchases,
            target=performance.target,
            attainment=performance.attainment,
            customers_at_start=performance.customers_at_start,
            customers_at_end=performance.customers_at_end,
            customers_won=performance.customers_won,
            customers_lost=performance.customers_lost,
            customers_retained=performance.customers_retained,
            retention_rate=performance.retention_rate,
            survey_count=performance.survey_count,
            average_satisfaction=performance.average_satisfaction,
            nps_responses=performance.nps_count,
            nps=performance.nps,
            complaints_received=performance.complaints_received,
            complaints_resolved=performance.complaints_resolved,
            median_resolution_hours=performance.median_resolution_hours,
            interactions=performance.interactions,
            tasks_due=performance.tasks_due,
            tasks_done_on_time=performance.tasks_done_on_time,
            tasks_overdue=performance.tasks_overdue,
            task_completion_rate=performance.task_completion_rate,
        )


MonthArgument = Annotated[
    str | None, strawberry.argument(description="One month, `YYYY-MM` (UTC); or give `from` and `to`; neither: this month.")
]
FromArgument = Annotated[
    str | None, strawberry.argument(name="from", description="The first month of a range, `YYYY-MM` (with `to`).")
]
ToArgument = Annotated[
    str | None, strawberry.argument(description="The last month of a range, `YYYY-MM`, included (with `from`).")
]
SeriesToArgument = Annotated[
    str | None, strawberry.argument(description="The series' last month, `YYYY-MM`; default this month.")
]
SeriesMonthsArgument = Annotated[
    int, strawberry.argument(description=f"How many months, 1 to {figures.MAX_SERIES_MONTHS}.")
]


# The group of figures (storage/performance_sql.py) each field needs; the others need none.
FIELD_GROUPS = {
    "revenue": SALES,
    "purchaseCount": SALES,
    "attainment": SALES,
    **dict.fromkeys(
        ("customersAtStart", "customersAtEnd", "customersWon", "customersLost", "customersRetained", "retentionRate"),
        CUSTOMERS,
    ),
    **dict.fromkeys(("surveyCount", "averageSatisfaction", "npsResponses", "nps", "complaintsReceived"), FEEDBACK),
    "complaintsResolved": RESOLUTIONS,
    "medianResolutionHours": RESOLUTIONS,
    "interactions": INTERACTIONS,
    **dict.fromkeys(("tasksDue", "tasksDoneOnTime", "tasksOverdue", "taskCompletionRate"), TASKS),
}


def _selected_names(selections: Iterable[Any]) -> Iterator[str]:
    for selection in selections:
        name = getattr(selection, "name", None)
        if isinstance(selection, SelectedField) and name is not None:
            yield name
        else:  # a fragment spread or an inline fragment: its own selections
            yield from _selected_names(getattr(selection, "selections", ()))


def selected_groups(info: Info) -> frozenset[str]:
    """The groups of figures the query selects under this field (through fragments): only those are computed."""
    names = _selected_names(selection for field in info.selected_fields for selection in field.selections)
    return frozenset(FIELD_GROUPS[name] for name in names if name in FIELD_GROUPS)


def performance_loaders(info: Info) -> PerformanceLoaders:
    loaders = info.context.performance_loaders
    if loaders is None:
        loaders = info.context.performance_loaders = PerformanceLoaders(info.context.db, info.context.now)
    return loaders


def _may_read(info: Info, kind: str, owner_id: int) -> bool:
    principal = info.context.principal
    if principal is None:
        return False
    return figures.may_read(principal.role, principal.employee_id, kind, owner_id)


async def _figures(info: Info, kind: str, owner_id: int, periods: list[figures.Period]) -> list[PerformanceType] | None:
    if not _may_read(info, kind, owner_id):
        return None
    found = await performance_loaders(info).figures.load((kind, owner_id, tuple(periods), selected_groups(info)))
    return None if found is None else [PerformanceType.of(performance) for performance in found]


async def owner_performance(
    info: Info, kind: str, owner_id: int, month: str | None, from_month: str | None, to_month: str | None
) -> PerformanceType | None:
    try:
        period = figures.resolve_period(month, from_month, to_month, info.context.now)
    except UserError as error:
        raise client_error(error.message, field=error.field, reason=error.code.upper()) from None
    found = await _figures(info, kind, owner_id, [period])
    return None if found is None else found[0]


async def owner_series(info: Info, kind: str, owner_id: int, to_month: str | None, months: int) -> list[PerformanceType] | None:
    try:
        periods = figures.series_periods(to_month, months, info.context.now)
    except UserError as error:
        raise client_error(error.message, field=error.field, reason=error.code.upper()) from None
    return await _figures(info, kind, owner_id, periods)


PERFORMANCE_DESCRIPTION = (
    "The figures of one month (`month`), of a range of months (`from`, `to`) or of this month (neither). Null "
    "when the caller may not read them (an agent reads only their own)."
)
SERIES_DESCRIPTION = (
    "One Performance per month, oldest first, for charts: the `months` months ending with `to`. Null when the "
    "caller may not read them."
)
