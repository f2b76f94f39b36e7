"""GraphQL object types of the data model (docs/graphql.md).  Each is built from its storage row with
`from_row`; related objects and lists come through the request's DataLoaders,
which apply the caller's customer scope (schema/permissions.py): a Customer
reached from another object is null when the caller may not see it.  The figures about customers
are in schema/metric_types.py, the routing types in schema/routing_types.py.

Why one module: these types point at each other both ways (a customer's team and a team's
customers, a purchase's customer and a customer's purchases, an employee's teams and a team's
members), and Strawberry resolves a field's type from the module that declares it.  Split by
area, each module would have to import the others (an import circle) or name them by string
through `strawberry.lazy` (the same circle, hidden from the import graph).  Everything that is
not part of that graph (the metrics and group figures, the routing types, the payloads) lives
elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from segmenta.domain.tasks.records import is_overdue_now
from segmenta.schema.context import Info
from segmenta.schema.enums import (
    AssignmentCause,
    CustomerKind,
    CustomerSize,
    EmployeeLevel,
    FeedbackKind,
    FeedbackStatus,
    InteractionKind,
    Lifecycle,
    PurchasingPower,
    SegmentKind,
    TaskSource,
    TaskStatus,
    TeamKind,
    TeamRole,
    TeamStrategy,
    to_enum,
)
from segmenta.schema.ids import encode_id
from segmenta.schema.loaders import (
    CUSTOMERS_OF_MANAGER,
    CUSTOMERS_OF_SEGMENT,
    CUSTOMERS_OF_TEAM,
    FEEDBACK_OF_CUSTOMER,
    INTERACTIONS_OF_CUSTOMER,
    PURCHASES_OF_CUSTOMER,
    TASKS_OF_CUSTOMER,
    TASKS_OF_EMPLOYEE,
    ChildList,
    loaded_or_later,
)
from segmenta.schema.metric_types import CustomerGroupStats, CustomerMetrics, EmployeeStats, TeamStats
from segmenta.schema.node_interface import Node
from segmenta.schema.orderings import (
    CUSTOMER_ORDERINGS,
    NEWEST_FEEDBACK,
    NEWEST_INTERACTIONS,
    NEWEST_PURCHASES,
    TASK_ORDERINGS,
    CustomerOrder,
    CustomerOrderArgument,
    TaskOrder,
    TaskOrderArgument,
)
from segmenta.schema.pagination import AfterArgument, Connection, FirstArgument, Ordering, page_size, to_connection
from segmenta.schema.performance_types import (
    PERFORMANCE_DESCRIPTION,
    SERIES_DESCRIPTION,
    FromArgument,
    MonthArgument,
    PerformanceType,
    SeriesMonthsArgument,
    SeriesToArgument,
    ToArgument,
    owner_performance,
    owner_series,
)
from segmenta.schema.timestamps import to_api
from segmenta.storage import models
from segmenta.storage.models import utcnow
from segmenta.storage.performance_sql import EMPLOYEE, TEAM


async def _child_connection(
    info: Info,
    children: ChildList,
    parent_id: int,
    ordering: Ordering,
    first: int | None,
    after: str | None,
    convert: Any,
) -> Any:
    loaders = info.context.loaders
    size = page_size(first)
    page = await loaders.page_of(children).load((parent_id, ordering, size, after))

    async def count_rows() -> int:
        return await loaders.count_of(children).load(parent_id)

    return to_connection(page, ordering, convert, count_rows)


# The `status` argument of task lists.
TaskStatusArgument = Annotated[
    TaskStatus | None, strawberry.argument(description="Only tasks in this status; all when not given.")
]


@strawberry.type(
    description=(
        "A customer (a company or a person): its profile, routing outcome (team, manager, segments, tags), "
        "metrics and activity. An agent sees only their customers: elsewhere such a customer reads as null."
    )
)
class Customer(Node):
    id: strawberry.ID = strawberry.field(
        description=(
            "Opaque global ID (base64 of `Customer:key`); pass it back as given, e.g. to `node(id)` or "
            "`customer(id)`."
        ),
    )
    code: str = strawberry.field(
        description=(
            "The unique external code (e.g. from another system); `customerByCode` finds the customer by it."
        ),
    )
    name: str = strawberry.field(description="The customer's name.")
    kind: CustomerKind | None = strawberry.field(description="Company or person; null when not recorded.")
    industry: str | None = strawberry.field(
        description=(
            "Industry, a free word such as `finance` (team members whose specialties include it are preferred as "
            "manager); null when not recorded."
        ),
    )
    size: CustomerSize | None = strawberry.field(description="Company size; null when not recorded.")
    region: str | None = strawberry.field(
        description=(
            "Region, a free word such as `east` (team members who cover it are preferred as manager); null when "
            "not recorded."
        ),
    )
    city: str | None = strawberry.field(description="City; null when not recorded.")
    country: str | None = strawberry.field(description="Country; null when not recorded.")
    lifecycle: Lifecycle | None = strawberry.field(description="Lifecycle stage; null when not recorded.")
    purchasing_power: PurchasingPower | None = strawberry.field(description="Purchasing power; null when not recorded.")
    channel: str | None = strawberry.field(
        description=(
            "The channel the customer is reached or buys through, a free word such as `online`; null when not "
            "recorded."
        ),
    )
    email: str | None = strawberry.field(
        description="E-mail address, stored lower-case; null when not recorded.",
    )
    phone: str | None = strawberry.field(description="Phone number as given; null when not recorded.")
    address: str | None = strawberry.field(description="Postal address; null when not recorded.")
    age: float | None = strawberry.field(description="Age in years (0–150); null when not recorded.")
    gender: str | None = strawberry.field(description="Gender as given; null when not recorded.")
    income: float | None = strawberry.field(
        description="Income, in the currency's units (0 or more); null when not recorded.",
    )
    occupation: str | None = strawberry.field(description="Occupation; null when not recorded.")
    birthday: date | None = strawberry.field(
        description="Date of birth (from 1900-01-01 to today); null when not recorded.",
    )
    created_at: datetime = strawberry.field(
        description="When the customer was created (or the creation time given by an import), UTC.",
    )
    updated_at: datetime | None = strawberry.field(
        description="When the customer's row last changed (profile, metrics or assignment), UTC; null when unknown.",
    )
    assignment_locked: bool = strawberry.field(description="Locked customers keep team and manager in rule runs.")
    deciding_rule: str | None = strawberry.field(description="The rule that decided the current team.")
    metrics: CustomerMetrics = strawberry.field(
        description=(
            "Every rule-language metric of the customer; day-based ones measured at the time of the request."
        ),
    )
    row: strawberry.Private[models.Customer]

    @classmethod
    def from_row(cls, row: models.Customer, now: datetime) -> Customer:
        # Only the row: each field is converted when the query first reads it (__getattr__), as a page of
        # 100 customers that selects a handful of fields paid ~2 ms for converting every column.
        customer = cls.__new__(cls)
        customer.row = row
        customer.__dict__["_now"] = now
        return customer

    def __getattr__(self, name: str) -> Any:
        # Reached only for a field not read yet (a read one is in the instance's __dict__).
        convert = _CUSTOMER_FIELDS.get(name)
        if convert is None or "row" not in self.__dict__:
            raise AttributeError(name)
        value = convert(self.row, self.__dict__["_now"])
        self.__dict__[name] = value
        return value

    # Plain functions, not coroutines: on a page their loaders were filled ahead (schema/prefetch.py) and
    # they answer at once; elsewhere they hand graphql-core the awaitable (schema/loaders.py, loaded_or_later).
    @strawberry.field(description="The team the rules (or assignManager) put the customer in; null: no team.")
    def team(self, info: Info) -> Team | None:
        if self.row.team_id is None:
            return None
        return loaded_or_later(info.context.loaders.team, self.row.team_id, _team_or_none)

    @strawberry.field(description="The account manager (an employee).")
    def manager(self, info: Info) -> Employee | None:
        if self.row.manager_id is None:
            return None
        return loaded_or_later(info.context.loaders.employee, self.row.manager_id, _employee_or_none)

    @strawberry.field(description="Manual and dynamic (rule-made) segments, by key.")
    def segments(self, info: Info) -> list[Segment]:
        return loaded_or_later(info.context.loaders.segments_of_customer, self.row.id, _segments_of)

    @strawberry.field(description="Manual and rule-made tags together, sorted, each once.")
    def tags(self, info: Info) -> list[str]:
        return loaded_or_later(info.context.loaders.tags_of_customer, self.row.id, _all_tags)

    @strawberry.field(description="The tags set by hand (the ones rules can read).")
    def manual_tags(self, info: Info) -> list[str]:
        return loaded_or_later(info.context.loaders.tags_of_customer, self.row.id, _manual_tags)

    @strawberry.field(description="The tags the active ruleset gave.")
    def rule_tags(self, info: Info) -> list[str]:
        return loaded_or_later(info.context.loaders.tags_of_customer, self.row.id, _rule_tags)

    @strawberry.field(description="Custom attributes: an object of text or number values.")
    def attributes(self, info: Info) -> JSON:
        return loaded_or_later(info.context.loaders.attributes_of_customer, self.row.id, JSON)

    @strawberry.field(description="Purchases, newest first.")
    async def purchases(
        self, info: Info, first: FirstArgument = None, after: AfterArgument = None
    ) -> Connection[Purchase]:
        return await _child_connection(
            info, PURCHASES_OF_CUSTOMER, self.row.id, NEWEST_PURCHASES, first, after, Purchase.from_row
        )

    @strawberry.field(description="Interactions, newest first.")
    async def interactions(
        self, info: Info, first: FirstArgument = None, after: AfterArgument = None
    ) -> Connection[Interaction]:
        return await _child_connection(
            info, INTERACTIONS_OF_CUSTOMER, self.row.id, NEWEST_INTERACTIONS, first, after, Interaction.from_row
        )

    @strawberry.field(description="Feedback, newest first.")
    async def feedback(
        self, info: Info, first: FirstArgument = None, after: AfterArgument = None
    ) -> Connection[Feedback]:
        return await _child_connection(
            info, FEEDBACK_OF_CUSTOMER, self.row.id, NEWEST_FEEDBACK, first, after, Feedback.from_row
        )

    @strawberry.field(description="The customer's follow-up tasks (an agent: those they may see), soonest due first.")
    async def tasks(
        self,
        info: Info,
        status: TaskStatusArgument = None,
        order_by: TaskOrderArgument = TaskOrder.DUE_AT_ASC,
        first: FirstArgument = None,
        after: AfterArgument = None,
    ) -> Connection[Task]:
        children = TASKS_OF_CUSTOMER[None if status is None else status.value]
        return await _child_connection(info, children, self.row.id, TASK_ORDERINGS[order_by], first, after, Task.from_row)

    @strawberry.field(description="Every change of team or manager, newest first.")
    async def assignment_history(self, info: Info) -> list[AssignmentChange]:
        rows = await info.context.loaders.history_of_customer.load(self.row.id)
        return [AssignmentChange.from_row(row) for row in rows]


# How each plain field of Customer comes from its row (and the request's instant), read lazily.
_CUSTOMER_FIELDS: dict[str, Callable[[models.Customer, datetime], Any]] = {
    "id": lambda row, now: strawberry.ID(encode_id("Customer", row.id)),
    "code": lambda row, now: row.code,
    "name": lambda row, now: row.name,
    "kind": lambda row, now: to_enum(CustomerKind, row.kind),
    "industry": lambda row, now: row.industry,
    "size": lambda row, now: to_enum(CustomerSize, row.size),
    "region": lambda row, now: row.region,
    "city": lambda row, now: row.city,
    "country": lambda row, now: row.country,
    "lifecycle": lambda row, now: to_enum(Lifecycle, row.lifecycle),
    "purchasing_power": lambda row, now: to_enum(PurchasingPower, row.purchasing_power),
    "channel": lambda row, now: row.channel,
    "email": lambda row, now: row.email,
    "phone": lambda row, now: row.phone,
    "address": lambda row, now: row.address,
    "age": lambda row, now: row.age,
    "gender": lambda row, now: row.gender,
    "income": lambda row, now: row.income,
    "occupation": lambda row, now: row.occupation,
    "birthday": lambda row, now: row.birthday,
    "created_at": lambda row, now: to_api(row.created_at) or now,
    "updated_at": lambda row, now: to_api(row.updated_at),
    "assignment_locked": lambda row, now: bool(row.assignment_locked),
    "deciding_rule": lambda row, now: row.deciding_rule,
    "metrics": lambda row, now: CustomerMetrics.from_row(row, now),
}


def _team_or_none(row: models.Team | None) -> Team | None:
    return Team.from_row(row) if row is not None else None


def _employee_or_none(row: models.Employee | None) -> Employee | None:
    return Employee.from_row(row) if row is not None else None


def _segments_of(rows: list[models.Segment]) -> list[Segment]:
    return [Segment.from_row(row) for row in rows]


def _all_tags(rows: list[models.CustomerTag]) -> list[str]:
    return sorted({row.tag for row in rows})


def _manual_tags(rows: list[models.CustomerTag]) -> list[str]:
    return [row.tag for row in rows if row.source == "manual"]


def _rule_tags(rows: list[models.CustomerTag]) -> list[str]:
    return [row.tag for row in rows if row.source != "manual"]


def _customer_converter(info: Info) -> Any:
    now = info.context.now
    return lambda row: Customer.from_row(row, now)


@strawberry.type(
    description=(
        "A team of employees that customers are routed to by the rules (`-> team KEY`); its strategy picks each "
        "customer's account manager among its members."
    )
)
class Team(Node):
    id: strawberry.ID = strawberry.field(
        description=(
            "Opaque global ID (base64 of `Team:key`); pass it back as given, e.g. to `node(id)` or "
            "`updateTeam(id:)`."
        ),
    )
    key: str = strawberry.field(description="The name rules use (`-> team KEY`).")
    name: str = strawberry.field(description="Display name.")
    description: str | None = strawberry.field(description="What the team is for; null when none.")
    kind: TeamKind | None = strawberry.field(description="What the team is organised around (informational).")
    strategy: TeamStrategy | None = strawberry.field(description="How the team picks a customer's account manager.")
    monthly_target: Decimal | None = strawberry.field(
        description="Revenue target per month, in the currency's units (exact); null when none.",
    )
    created_at: datetime | None = strawberry.field(description="When the team was created, UTC.")
    active: bool = strawberry.field(
        description=(
            "False: the team takes no customers (runs pass over rules naming it; real-time routing leaves "
            "customers where they are). Its customers stay until the next run moves them on."
        )
    )
    row: strawberry.Private[models.Team]

    @classmethod
    def from_row(cls, row: models.Team) -> Team:
        return cls(
            id=strawberry.ID(encode_id("Team", row.id)),
            key=row.key,
            name=row.name,
            description=row.description,
            kind=to_enum(TeamKind, row.kind),
            strategy=to_enum(TeamStrategy, row.strategy),
            monthly_target=row.monthly_target,
            created_at=to_api(row.created_at),
            active=bool(row.active),
            row=row,
        )

    @strawberry.field(description="Members with their role; leaders first.")
    async def members(self, info: Info) -> list[TeamMember]:
        rows = await info.context.loaders.members_of_team.load(self.row.id)
        return [TeamMember.from_row(row) for row in rows]

    @strawberry.field(description="The team's customers (an agent: only their customers), paged.")
    async def customers(
        self,
        info: Info,
        first: FirstArgument = None,
        after: AfterArgument = None,
        order_by: CustomerOrderArgument = CustomerOrder.NAME_ASC,
    ) -> Connection[Customer]:
        return await _child_connection(
            info, CUSTOMERS_OF_TEAM, self.row.id, CUSTOMER_ORDERINGS[order_by], first, after, _customer_converter(info)
        )

    @strawberry.field(
        description=(
            "Figures over the team's customers (an agent: only their customers), its member count and target."
        )
    )
    async def stats(self, info: Info) -> TeamStats:
        stats = await info.context.loaders.team_stats.load(self.row.id)
        members = await info.context.loaders.members_of_team.load(self.row.id)
        return TeamStats(
            **CustomerGroupStats.fields_of(stats), member_count=len(members), monthly_target=self.row.monthly_target
        )

    @strawberry.field(description=PERFORMANCE_DESCRIPTION + " Over the customers the team managed at the time.")
    async def performance(
        self, info: Info, month: MonthArgument = None, from_: FromArgument = None, to: ToArgument = None
    ) -> PerformanceType | None:
        return await owner_performance(info, TEAM, self.row.id, month, from_, to)

    @strawberry.field(description=SERIES_DESCRIPTION)
    async def performance_series(
        self, info: Info, to: SeriesToArgument = None, months: SeriesMonthsArgument = 12
    ) -> list[PerformanceType] | None:
        return await owner_series(info, TEAM, self.row.id, to, months)


@strawberry.type(description="An employee's membership of a team, with their role in it.")
class TeamMember:
    role: TeamRole | None = strawberry.field(description="LEADER or MEMBER.")
    joined_at: datetime | None = strawberry.field(description="When the employee joined the team, UTC.")
    row: strawberry.Private[models.TeamMember]

    @classmethod
    def from_row(cls, row: models.TeamMember) -> TeamMember:
        return cls(role=to_enum(TeamRole, row.role), joined_at=to_api(row.joined_at), row=row)

    @strawberry.field(description="The member.")
    async def employee(self, info: Info) -> Employee:
        found = await info.context.loaders.employee.load(self.row.employee_id)
        return Employee.from_row(found)

    @strawberry.field(description="The team.")
    async def team(self, info: Info) -> Team:
        found = await info.context.loaders.team.load(self.row.team_id)
        return Team.from_row(found)


@strawberry.type(description="A member of staff who can manage customers and belong to teams.")
class Employee(Node):
    id: strawberry.ID = strawberry.field(
        description=(
            "Opaque global ID (base64 of `Employee:key`); pass it back as given, e.g. to `node(id)` or "
            "`employee(id)`."
        ),
    )
    name: str = strawberry.field(description="The employee's name.")
    email: str = strawberry.field(
        description="Unique e-mail address, stored lower-case; agent tokens are bound by it.",
    )
    level: EmployeeLevel | None = strawberry.field(description="Seniority (informational).")
    specialties: list[str] = strawberry.field(description="Industries the employee knows best.")
    regions: list[str] = strawberry.field(
        description=(
            "Regions the employee covers; as a team member they are preferred for customers of these regions."
        ),
    )
    capacity: int | None = strawberry.field(description="Maximum customers; null = unlimited.")
    active: bool = strawberry.field(
        description="False: the employee gets no new customers from routing and cannot be assigned by hand.",
    )
    monthly_target: Decimal | None = strawberry.field(
        description="Revenue target per month, in the currency's units (exact); null when none.",
    )
    created_at: datetime | None = strawberry.field(description="When the employee was created, UTC.")
    row: strawberry.Private[models.Employee]

    @classmethod
    def from_row(cls, row: models.Employee) -> Employee:
        return cls(
            id=strawberry.ID(encode_id("Employee", row.id)),
            name=row.name,
            email=row.email,
            level=to_enum(EmployeeLevel, row.level),
            specialties=list(row.specialties or []),
            regions=list(row.regions or []),
            capacity=row.capacity,
            active=bool(row.active),
            monthly_target=row.monthly_target,
            created_at=to_api(row.created_at),
            row=row,
        )

    @strawberry.field(description="The teams the employee is a member of.")
    async def teams(self, info: Info) -> list[Team]:
        memberships = await info.context.loaders.memberships_of_employee.load(self.row.id)
        teams = await info.context.loaders.team.load_many([member.team_id for member in memberships])
        return [Team.from_row(team) for team in teams if team is not None]

    @strawberry.field(description="Team memberships with the employee's role in each.")
    async def memberships(self, info: Info) -> list[TeamMember]:
        memberships = await info.context.loaders.memberships_of_employee.load(self.row.id)
        return [TeamMember.from_row(row) for row in memberships]

    @strawberry.field(description="The customers this employee manages.")
    async def customers(
        self,
        info: Info,
        first: FirstArgument = None,
        after: AfterArgument = None,
        order_by: CustomerOrderArgument = CustomerOrder.NAME_ASC,
    ) -> Connection[Customer]:
        return await _child_connection(
            info,
            CUSTOMERS_OF_MANAGER,
            self.row.id,
            CUSTOMER_ORDERINGS[order_by],
            first,
            after,
            _customer_converter(info),
        )

    @strawberry.field(
        description="Tasks assigned to this employee (an agent: those they may see), soonest due first."
    )
    async def tasks(
        self,
        info: Info,
        status: TaskStatusArgument = None,
        order_by: TaskOrderArgument = TaskOrder.DUE_AT_ASC,
        first: FirstArgument = None,
        after: AfterArgument = None,
    ) -> Connection[Task]:
        children = TASKS_OF_EMPLOYEE[None if status is None else status.value]
        return await _child_connection(info, children, self.row.id, TASK_ORDERINGS[order_by], first, after, Task.from_row)

    @strawberry.field(
        description=(
            "Figures over the customers the employee manages (an agent: only their customers), capacity and "
            "activity counts."
        )
    )
    async def stats(self, info: Info) -> EmployeeStats:
        loaders = info.context.loaders
        stats = await loaders.manager_stats.load(self.row.id)
        capacity = self.row.capacity
        # The figures are over the caller's scope, but free capacity is about every customer the employee has.
        # (Awaited for every employee alike, so the loads of a page still batch into one statement each.)
        managed = await loaders.managed_count.load(self.row.id) if loaders.scope.restricted else stats.customer_count
        return EmployeeStats(
            **CustomerGroupStats.fields_of(stats),
            capacity=capacity,
            free_capacity=None if capacity is None else max(capacity - managed, 0),
            interactions_handled=await loaders.interactions_by_employee.load(self.row.id),
            feedback_received=await loaders.feedback_by_employee.load(self.row.id),
            monthly_target=self.row.monthly_target,
        )

    @strawberry.field(description=PERFORMANCE_DESCRIPTION + " Over the customers the employee managed at the time.")
    async def performance(
        self, info: Info, month: MonthArgument = None, from_: FromArgument = None, to: ToArgument = None
    ) -> PerformanceType | None:
        return await owner_performance(info, EMPLOYEE, self.row.id, month, from_, to)

    @strawberry.field(description=SERIES_DESCRIPTION)
    async def performance_series(
        self, info: Info, to: SeriesToArgument = None, months: SeriesMonthsArgument = 12
    ) -> list[PerformanceType] | None:
        return await owner_series(info, EMPLOYEE, self.row.id, to, months)


@strawberry.type(
    description=(
        "A named group of customers: MANUAL (kept by hand) or DYNAMIC (kept by the active ruleset). Rules and "
        "`where` conditions name a segment by its key."
    )
)
class Segment(Node):
    id: strawberry.ID = strawberry.field(
        description="Opaque global ID (base64 of `Segment:key`); pass it back as given, e.g. to `node(id)`.",
    )
    key: str = strawberry.field(
        description="The name rules and `where` conditions use for the segment, e.g. `high_value`; unique.",
    )
    name: str = strawberry.field(description="Display name.")
    description: str | None = strawberry.field(description="What the segment is for; null when none.")
    kind: SegmentKind | None = strawberry.field(
        description="MANUAL (kept by hand) or DYNAMIC (kept by the active ruleset).",
    )
    created_at: datetime | None = strawberry.field(description="When the segment was created, UTC.")
    row: strawberry.Private[models.Segment]

    @classmethod
    def from_row(cls, row: models.Segment) -> Segment:
        return cls(
            id=strawberry.ID(encode_id("Segment", row.id)),
            key=row.key,
            name=row.name,
            description=row.description,
            kind=to_enum(SegmentKind, row.kind),
            created_at=to_api(row.created_at),
            row=row,
        )

    @strawberry.field(description="Number of customers in the segment (an agent: of their customers).")
    async def size(self, info: Info) -> int:
        return await info.context.loaders.count_of(CUSTOMERS_OF_SEGMENT).load(self.row.id)

    @strawberry.field(description="The segment's members (an agent: only their customers), paged.")
    async def customers(
        self,
        info: Info,
        first: FirstArgument = None,
        after: AfterArgument = None,
        order_by: CustomerOrderArgument = CustomerOrder.NAME_ASC,
    ) -> Connection[Customer]:
        return await _child_connection(
            info,
            CUSTOMERS_OF_SEGMENT,
            self.row.id,
            CUSTOMER_ORDERINGS[order_by],
            first,
            after,
            _customer_converter(info),
        )

    @strawberry.field(description="Figures over the segment's members (an agent: only their customers).")
    async def stats(self, info: Info) -> CustomerGroupStats:
        return CustomerGroupStats.from_stats(await info.context.loaders.segment_stats.load(self.row.id))


async def _customer_of(info: Info, customer_id: int) -> Customer | None:
    found = await info.context.loaders.customer.load(customer_id)
    return Customer.from_row(found, info.context.now) if found is not None else None


OUT_OF_SCOPE_CUSTOMER = "The customer; null when the caller may not see it (an agent's scope)."


@strawberry.type(
    description=(
        "A follow-up task on one customer: for an employee (`assignee`) or a team's queue (`team`), with a kind, "
        "a due time and a status. Made by a rule's `-> task KIND` action, by createTask, or by Segmenta."
    )
)
class Task(Node):
    id: strawberry.ID = strawberry.field(
        description=(
            "Opaque global ID (base64 of `Task:key`); pass it back as given, e.g. to `node(id)` or `completeTask`."
        ),
    )
    kind: str = strawberry.field(description="The kind, a word of the team's own (e.g. `birthday_greeting`).")
    title: str = strawberry.field(description="What to do, in words.")
    due_at: datetime | None = strawberry.field(description="When it is due, UTC.")
    status: TaskStatus | None = strawberry.field(description="OPEN, DONE or CANCELLED.")
    overdue: bool = strawberry.field(description="OPEN and past its due time (at the request's time).")
    source: TaskSource | None = strawberry.field(description="RULE, MANUAL or SYSTEM.")
    rule: str | None = strawberry.field(
        description="For a rule-made task, the rule that made it (its label, or `line N`); null otherwise."
    )
    created_at: datetime | None = strawberry.field(description="When it was created, UTC.")
    completed_at: datetime | None = strawberry.field(description="When it was done or cancelled, UTC; null while open.")
    outcome: str | None = strawberry.field(description="The note given when it was done or cancelled; null when none.")
    row: strawberry.Private[models.Task]

    @classmethod
    def from_row(cls, row: models.Task, now: datetime | None = None) -> Task:
        return cls(
            id=strawberry.ID(encode_id("Task", row.id)),
            kind=row.kind,
            title=row.title,
            due_at=to_api(row.due_at),
            status=to_enum(TaskStatus, row.status),
            overdue=is_overdue_now(row, now or utcnow()),
            source=to_enum(TaskSource, row.source),
            rule=row.rule,
            created_at=to_api(row.created_at),
            completed_at=to_api(row.completed_at),
            outcome=row.outcome,
            row=row,
        )

    @strawberry.field(description=OUT_OF_SCOPE_CUSTOMER)
    async def customer(self, info: Info) -> Customer | None:
        return await _customer_of(info, self.row.customer_id)

    @strawberry.field(description="The employee it is assigned to; null when it is in a team's queue or nobody's.")
    async def assignee(self, info: Info) -> Employee | None:
        return await employee_of(info, self.row.employee_id)

    @strawberry.field(description="The team whose queue holds it (no assignee); null otherwise.")
    async def team(self, info: Info) -> Team | None:
        return await team_of(info, self.row.team_id)

    @strawberry.field(description="Who completed or cancelled it; null while open or when not known.")
    async def completed_by(self, info: Info) -> Employee | None:
        return await employee_of(info, self.row.completed_by_id)


async def employee_of(info: Info, employee_id: int | None) -> Employee | None:
    if employee_id is None:
        return None
    found = await info.context.loaders.employee.load(employee_id)
    return Employee.from_row(found) if found is not None else None


@strawberry.type(description="One purchase of a customer; recording it updates the customer's metrics.")
class Purchase(Node):
    id: strawberry.ID = strawberry.field(
        description="Opaque global ID (base64 of `Purchase:key`); pass it back as given, e.g. to `node(id)`.",
    )
    amount: Decimal = strawberry.field(
        description="The amount paid, exact, in the currency's units (0 to 1,000,000,000, at most 2 decimals).",
    )
    category: str | None = strawberry.field(
        description="Product category, a free word such as `software`; null when not recorded.",
    )
    product: str | None = strawberry.field(description="Product name; null when not recorded.")
    channel: str | None = strawberry.field(
        description="Where the purchase was made, a free word such as `web`; null when not recorded.",
    )
    purchased_at: datetime | None = strawberry.field(description="When the purchase was made, UTC.")
    row: strawberry.Private[models.Purchase]

    @classmethod
    def from_row(cls, row: models.Purchase) -> Purchase:
        return cls(
            id=strawberry.ID(encode_id("Purchase", row.id)),
            amount=row.amount,
            category=row.category,
            product=row.product,
            channel=row.channel,
            purchased_at=to_api(row.purchased_at),
            row=row,
        )

    @strawberry.field(description=OUT_OF_SCOPE_CUSTOMER)
    async def customer(self, info: Info) -> Customer | None:
        return await _customer_of(info, self.row.customer_id)


@strawberry.type(description="One contact between an employee and a customer (visit, call, e-mail, message, meeting).")
class Interaction(Node):
    id: strawberry.ID = strawberry.field(
        description="Opaque global ID (base64 of `Interaction:key`); pass it back as given, e.g. to `node(id)`.",
    )
    kind: InteractionKind | None = strawberry.field(description="How the contact happened.")
    occurred_at: datetime | None = strawberry.field(description="When it happened, UTC.")
    summary: str | None = strawberry.field(description="A note on what was discussed; null when none.")
    row: strawberry.Private[models.Interaction]

    @classmethod
    def from_row(cls, row: models.Interaction) -> Interaction:
        return cls(
            id=strawberry.ID(encode_id("Interaction", row.id)),
            kind=to_enum(InteractionKind, row.kind),
            occurred_at=to_api(row.occurred_at),
            summary=row.summary,
            row=row,
        )

    @strawberry.field(description=OUT_OF_SCOPE_CUSTOMER)
    async def customer(self, info: Info) -> Customer | None:
        return await _customer_of(info, self.row.customer_id)

    @strawberry.field(description="The employee involved; null when none was named (or the employee was deleted).")
    async def employee(self, info: Info) -> Employee | None:
        return await employee_of(info, self.row.employee_id)


@strawberry.type(
    description=(
        "A survey answer, NPS answer, complaint, suggestion or praise from a customer, with its handling status."
    )
)
class Feedback(Node):
    id: strawberry.ID = strawberry.field(
        description=(
            "Opaque global ID (base64 of `Feedback:key`); pass it back as given, e.g. to `node(id)`, or to "
            "`updateFeedbackStatus(id:)`."
        ),
    )
    kind: FeedbackKind | None = strawberry.field(description="Survey, NPS, complaint, suggestion or praise.")
    score: int | None = strawberry.field(description="Survey 1–5, NPS 0–10 (whole numbers), otherwise null.")
    comment: str | None = strawberry.field(description="What the customer said; null when nothing.")
    channel: str | None = strawberry.field(
        description="How the feedback came in, a free word such as `phone`; null when not recorded.",
    )
    status: FeedbackStatus | None = strawberry.field(
        description="Handling status: complaints start OPEN, other kinds CLOSED.",
    )
    status_note: str | None = strawberry.field(
        description=(
            "The note of the latest status change that gave one (updateFeedbackStatus `note`); null when none."
        ),
    )
    created_at: datetime | None = strawberry.field(description="When the feedback was submitted, UTC.")
    resolved_at: datetime | None = strawberry.field(
        description=(
            "When it last moved from OPEN or IN_PROGRESS to RESOLVED or CLOSED, UTC; null while open and for "
            "feedback that started CLOSED."
        ),
    )
    row: strawberry.Private[models.Feedback]

    @classmethod
    def from_row(cls, row: models.Feedback) -> Feedback:
        return cls(
            id=strawberry.ID(encode_id("Feedback", row.id)),
            kind=to_enum(FeedbackKind, row.kind),
            score=None if row.score is None else int(row.score),
            comment=row.comment,
            channel=row.channel,
            status=to_enum(FeedbackStatus, row.status),
            status_note=row.status_note,
            created_at=to_api(row.created_at),
            resolved_at=to_api(row.resolved_at),
            row=row,
        )

    @strawberry.field(description=OUT_OF_SCOPE_CUSTOMER)
    async def customer(self, info: Info) -> Customer | None:
        return await _customer_of(info, self.row.customer_id)

    @strawberry.field(description="The employee named with the feedback; null when none.")
    async def employee(self, info: Info) -> Employee | None:
        return await employee_of(info, self.row.employee_id)


@strawberry.type(description="Team and manager before and after a change.")
class TeamAndManagerMove:
    """Team and manager before and after, read from a row with *_before_id / *_after_id columns."""

    row: strawberry.Private[Any]

    @strawberry.field(description="The team before the change; null: none (or deleted since).")
    async def team_before(self, info: Info) -> Team | None:
        return await team_of(info, self.row.team_before_id)

    @strawberry.field(description="The team after the change; null: none (or deleted since).")
    async def team_after(self, info: Info) -> Team | None:
        return await team_of(info, self.row.team_after_id)

    @strawberry.field(description="The account manager before the change; null: none (or deleted since).")
    async def manager_before(self, info: Info) -> Employee | None:
        return await employee_of(info, self.row.manager_before_id)

    @strawberry.field(description="The account manager after the change; null: none (or deleted since).")
    async def manager_after(self, info: Info) -> Employee | None:
        return await employee_of(info, self.row.manager_after_id)


@strawberry.type(description="One change of a customer's team or manager.")
class AssignmentChange(TeamAndManagerMove, Node):
    id: strawberry.ID = strawberry.field(
        description=(
            "Opaque global ID (base64 of `AssignmentChange:key`); pass it back as given, e.g. to `node(id)`."
        ),
    )
    cause: AssignmentCause | None = strawberry.field(
        description="What made the change: an apply RUN, REALTIME routing or a MANUAL assignManager.",
    )
    rule: str | None = strawberry.field(description="The deciding rule, when a rule made the change.")
    run_id: strawberry.ID | None = strawberry.field(description="The evaluation run, when a run made the change.")
    changed_at: datetime | None = strawberry.field(description="When the change was committed, UTC.")
    row: strawberry.Private[models.AssignmentHistory]

    @classmethod
    def from_row(cls, row: models.AssignmentHistory) -> AssignmentChange:
        return cls(
            id=strawberry.ID(encode_id("AssignmentChange", row.id)),
            cause=to_enum(AssignmentCause, row.cause),
            rule=row.rule,
            run_id=strawberry.ID(encode_id("EvaluationRun", row.run_id)) if row.run_id is not None else None,
            changed_at=to_api(row.changed_at),
            row=row,
        )



async def team_of(info: Info, team_id: int | None) -> Team | None:
    if team_id is None:
        return None
    found = await info.context.loaders.team.load(team_id)
    return Team.from_row(found) if found is not None else None
