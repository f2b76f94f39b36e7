"""The `stats` query: figures over the whole customer base, each computed only when selected.

Figures made from customer rows (and `openFeedback`) are over the caller's scope (domain.access.scope):
an agent's are over their own customers; employee, team and segment counts are not customer data
and stay global."""

from __future__ import annotations

from collections import Counter
from typing import Any

import strawberry
from sqlalchemy import func, select

from segmenta.schema.context import Info
from segmenta.schema.enums import CustomerSize, EnumT, Lifecycle, to_enum
from segmenta.schema.loaders import overall_stats, restricted
from segmenta.schema.metric_types import CustomerGroupStats
from segmenta.schema.permissions import scope
from segmenta.schema.types import Team
from segmenta.storage import models


@strawberry.type(description="Customers sharing one stored value of a free-text field.")
class ValueCount:
    value: str | None = strawberry.field(description="The stored word (null: customers without a value).")
    count: int = strawberry.field(
        description="Customers with this value (an agent: of their customers).",
    )


@strawberry.type(description="Customers of one size.")
class SizeCount:
    value: CustomerSize | None = strawberry.field(
        description="The size (null: customers without a size, or with a stored word that is no CustomerSize)."
    )
    count: int = strawberry.field(description="Customers of this size (an agent: of their customers).")


@strawberry.type(description="Customers at one lifecycle stage.")
class LifecycleCount:
    value: Lifecycle | None = strawberry.field(
        description="The stage (null: customers without a lifecycle, or with a stored word that is no Lifecycle)."
    )
    count: int = strawberry.field(description="Customers at this stage (an agent: of their customers).")


@strawberry.type(description="Customers of one team.")
class TeamCount:
    team: Team | None = strawberry.field(description="null: customers without a team.")
    count: int = strawberry.field(
        description="Customers of this team (an agent: of their customers).",
    )


async def _count(info: Info, model: type[Any], *conditions: Any) -> int:
    statement = select(func.count()).select_from(model)
    if conditions:
        statement = statement.where(*conditions)
    return int((await info.context.db.execute(statement)).scalar_one())


async def _count_customers(info: Info, *conditions: Any) -> int:
    visible = scope(info).customers()
    return await _count(info, models.Customer, *conditions, *([] if visible is None else [visible]))


def _grouped_customers(info: Info, column: Any) -> Any:
    """Visible customers per value of `column`, largest group first."""
    statement = restricted(select(column, func.count()).select_from(models.Customer), scope(info).customers())
    return statement.group_by(column).order_by(func.count().desc(), column)


async def _by_column(info: Info, column: Any) -> list[ValueCount]:
    rows = (await info.context.db.execute(_grouped_customers(info, column))).all()
    return [ValueCount(value=value, count=count) for value, count in rows]


async def _by_enum(info: Info, column: Any, enum_type: type[EnumT]) -> list[tuple[EnumT | None, int]]:
    """Visible customers per enum member, largest group first; customers without a value and those
    holding a word the enum lacks (no write path stores one, but a database may) share one null group."""
    counts: Counter[EnumT | None] = Counter()
    for word, count in (await info.context.db.execute(_grouped_customers(info, column))).all():
        counts[to_enum(enum_type, word)] += count
    # Counter keeps first-seen order among equal counts: the statement's order (count, then word).
    return counts.most_common()


@strawberry.type(
    description="Figures over all customers, employees, teams and feedback (an agent: over their customers)."
)
class Stats:
    @strawberry.field(description="Aggregated metrics of every customer.")
    async def customers(self, info: Info) -> CustomerGroupStats:
        return CustomerGroupStats.from_stats(await overall_stats(info.context.db, scope(info).customers()))

    @strawberry.field(description="Number of customers (an agent: of their customers).")
    async def customer_count(self, info: Info) -> int:
        return await _count_customers(info)

    @strawberry.field(description="Customers without a team.")
    async def unassigned_customers(self, info: Info) -> int:
        return await _count_customers(info, models.Customer.team_id.is_(None))

    @strawberry.field(description="Customers with a team but no account manager.")
    async def customers_without_manager(self, info: Info) -> int:
        return await _count_customers(info, models.Customer.team_id.is_not(None), models.Customer.manager_id.is_(None))

    @strawberry.field(description="Number of employees, active or not (global, also for an agent).")
    async def employee_count(self, info: Info) -> int:
        return await _count(info, models.Employee)

    @strawberry.field(description="Number of teams (global, also for an agent).")
    async def team_count(self, info: Info) -> int:
        return await _count(info, models.Team)

    @strawberry.field(description="Number of segments, manual and dynamic (global, also for an agent).")
    async def segment_count(self, info: Info) -> int:
        return await _count(info, models.Segment)

    @strawberry.field(description="Feedback still OPEN or IN_PROGRESS.")
    async def open_feedback(self, info: Info) -> int:
        visible = scope(info).owned_by_visible(models.Feedback.customer_id)
        conditions = [models.Feedback.status.in_(["open", "in_progress"])] + ([] if visible is None else [visible])
        return await _count(info, models.Feedback, *conditions)

    @strawberry.field(description="Customers per lifecycle stage, largest first; at most one null group.")
    async def by_lifecycle(self, info: Info) -> list[LifecycleCount]:
        counts = await _by_enum(info, models.Customer.lifecycle, Lifecycle)
        return [LifecycleCount(value=value, count=count) for value, count in counts]

    @strawberry.field(description="Customers per size, largest first; at most one null group.")
    async def by_size(self, info: Info) -> list[SizeCount]:
        return [SizeCount(value=value, count=count) for value, count in await _by_enum(info, models.Customer.size, CustomerSize)]

    @strawberry.field(
        description="Customers per region, largest first; customers without a region form one null group."
    )
    async def by_region(self, info: Info) -> list[ValueCount]:
        return await _by_column(info, models.Customer.region)

    @strawberry.field(
        description="Customers per industry, largest first; customers without an industry form one null group."
    )
    async def by_industry(self, info: Info) -> list[ValueCount]:
        return await _by_column(info, models.Customer.industry)

    @strawberry.field(description="Customers per team, largest first.")
    async def by_team(self, info: Info) -> list[TeamCount]:
        rows = (await info.context.db.execute(_grouped_customers(info, models.Customer.team_id))).all()
        teams = await info.context.loaders.team.load_many([team_id for team_id, _ in rows if team_id is not None])
        by_id = {team.id: team for team in teams if team is not None}
        return [
            TeamCount(team=Team.from_row(by_id[team_id]) if team_id in by_id else None, count=count)
            for team_id, count in rows
        ]
