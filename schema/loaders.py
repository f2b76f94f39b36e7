"""Per-request DataLoaders: every related object or list is fetched for a whole
page of parents in one SQL statement, so the statement count of a query does
not grow with the page size (see tests/schema/test_statement_count.py).

Customers are scoped here (domain.access.scope): `Loaders.scope` is the caller's scope,
bound by the Authentication extension before any resolver runs.  The customer
by-id loader, every customer child list (pages and counts) and every aggregate
over customer rows add its predicate to their one statement, so an agent gets
null, a shorter list, or a smaller figure, never another agent's customer.  It
starts as "no customer at all": a Loaders that was never bound shows nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased
from strawberry.dataloader import DataLoader

from segmenta.domain.access import tokens
from segmenta.domain.access.scope import Scope
from segmenta.domain.tasks import records as task_records
from segmenta.domain.tasks.vocabulary import TASK_STATUSES
from segmenta.dsl.money import ZERO
from segmenta.schema.pagination import Ordering, Page, split_pages
from segmenta.schema.serial import SerialSession
from segmenta.storage import models

KeyT = TypeVar("KeyT", bound=Hashable)
ValueT = TypeVar("ValueT")


@dataclass(frozen=True, eq=False)
class ChildList:
    """The children of a parent: rows of `entity` whose `parent_column` holds the parent's key
    (and, when given, for which `condition` holds: a module constant, so the list stays one loader)."""

    entity: type[models.Base]
    parent_column: InstrumentedAttribute[Any]
    join: Callable[[Select[Any]], Select[Any]] | None = None
    condition: ColumnElement[bool] | None = None

    def joined(self, statement: Select[Any]) -> Select[Any]:
        statement = self.join(statement) if self.join is not None else statement
        return statement if self.condition is None else statement.where(self.condition)


def _join_segment_members(statement: Select[Any]) -> Select[Any]:
    return statement.join(models.SegmentMember, models.SegmentMember.customer_id == models.Customer.id)


PURCHASES_OF_CUSTOMER = ChildList(models.Purchase, models.Purchase.customer_id)
INTERACTIONS_OF_CUSTOMER = ChildList(models.Interaction, models.Interaction.customer_id)
FEEDBACK_OF_CUSTOMER = ChildList(models.Feedback, models.Feedback.customer_id)
CUSTOMERS_OF_TEAM = ChildList(models.Customer, models.Customer.team_id)
CUSTOMERS_OF_MANAGER = ChildList(models.Customer, models.Customer.manager_id)
CUSTOMERS_OF_SEGMENT = ChildList(models.Customer, models.SegmentMember.segment_id, _join_segment_members)
# A customer's and an employee's tasks, all or of one status (the word as stored).
TASKS_OF_CUSTOMER: dict[str | None, ChildList] = {
    status: ChildList(models.Task, models.Task.customer_id, condition=None if status is None else models.Task.status == status)
    for status in (None, *TASK_STATUSES)
}
TASKS_OF_EMPLOYEE: dict[str | None, ChildList] = {
    status: ChildList(models.Task, models.Task.employee_id, condition=None if status is None else models.Task.status == status)
    for status in (None, *TASK_STATUSES)
}

# (parent key, ordering, first, after): pages of one child list for many parents.
PageKey = tuple[int, Ordering, int, str | None]


@dataclass
class GroupStats:
    """Aggregates of the maintained metric columns over a group of customers."""

    customer_count: int = 0
    total_spent: Decimal = ZERO
    purchase_count: int = 0
    survey_sum: float = 0.0
    survey_count: int = 0
    nps_sum: float = 0.0
    nps_count: int = 0
    feedback_count: int = 0
    complaint_count: int = 0
    open_complaints: int = 0
    interaction_count: int = 0


def _stats_columns() -> list[ColumnElement[Any]]:
    customer = models.Customer
    return [
        func.count(customer.id),
        func.coalesce(func.sum(customer.total_spent), 0),
        func.coalesce(func.sum(customer.purchase_count), 0),
        func.coalesce(func.sum(customer.survey_sum), 0.0),
        func.coalesce(func.sum(customer.survey_count), 0),
        func.coalesce(func.sum(customer.nps_sum), 0.0),
        func.coalesce(func.sum(customer.nps_count), 0),
        func.coalesce(func.sum(customer.feedback_count), 0),
        func.coalesce(func.sum(customer.complaint_count), 0),
        func.coalesce(func.sum(customer.open_complaints), 0),
        func.coalesce(func.sum(customer.interaction_count), 0),
    ]


def _stats_from_row(values: Sequence[Any]) -> GroupStats:
    return GroupStats(
        customer_count=int(values[0]),
        total_spent=values[1],
        purchase_count=int(values[2]),
        survey_sum=float(values[3]),
        survey_count=int(values[4]),
        nps_sum=float(values[5]),
        nps_count=int(values[6]),
        feedback_count=int(values[7]),
        complaint_count=int(values[8]),
        open_complaints=int(values[9]),
        interaction_count=int(values[10]),
    )


async def overall_stats(db: SerialSession, where: ColumnElement[bool] | None = None) -> GroupStats:
    statement = select(*_stats_columns()).select_from(models.Customer)
    if where is not None:
        statement = statement.where(where)
    return _stats_from_row((await db.execute(statement)).one())


def restricted(statement: Select[Any], predicate: ColumnElement[bool] | None) -> Select[Any]:
    """`statement` with the scope predicate added; unchanged for a caller who sees everything."""
    return statement if predicate is None else statement.where(predicate)


ResultT = TypeVar("ResultT")

# Made once: an alias builds a proxy of every column, and a new one per request would cost more than it saves.
_MANAGER = aliased(models.Employee, name="manager")


def loaded_or_later(loader: DataLoader[Any, ValueT], key: Any, convert: Callable[[ValueT], ResultT]) -> ResultT:
    """`convert` of the loader's value for `key` when the loader already holds it, else an awaitable of it.

    For a field resolver written as a plain function: graphql-core awaits a result that is awaitable,
    and completes any other at once, without the task it runs each awaitable field in.  Relations
    loaded ahead for a whole page (schema/prefetch.py) are so answered with no task per field.  The
    declared type is the value's (the awaitable case is graphql-core's to await), so the field's type
    in the schema stays the value's."""
    future = loader.cache_map.get(key) if loader.cache else None
    if future is not None and future.done() and not future.cancelled() and future.exception() is None:
        return convert(future.result())

    async def later() -> ResultT:
        return convert(await loader.load(key))

    return cast(ResultT, later())


class Loaders:
    """One set per request; never shared, so a request never sees another one's cache."""

    def __init__(self, session: AsyncSession) -> None:
        self.db = SerialSession(session)
        # Fail closed until Authentication binds the caller's scope.
        self.scope = Scope(restricted=True)
        # The caller's role, bound with the scope (None: nobody, who may see no token).
        self.role: str | None = None
        self.customer = self._by_id(models.Customer, scoped=True)
        self.team = self._by_id(models.Team)
        self.employee = self._by_id(models.Employee)
        # `customer(id)` selecting its team or manager: the customer with both in one statement.
        self.customer_with_relations: DataLoader[int, models.Customer | None] = DataLoader(
            self._customers_with_relations
        )
        self.segment = self._by_id(models.Segment)
        # The rows `node(id)` can reach besides those above: a customer's own rows only when the customer
        # is in scope (as through `customer(id)`), runs and rulesets for everyone, tokens for admins.
        self.purchase = self._by_id(models.Purchase, owner=models.Purchase.customer_id)
        self.interaction = self._by_id(models.Interaction, owner=models.Interaction.customer_id)
        self.feedback = self._by_id(models.Feedback, owner=models.Feedback.customer_id)
        self.assignment_change = self._by_id(models.AssignmentHistory, owner=models.AssignmentHistory.customer_id)
        self.evaluation_change = self._by_id(models.EvaluationChange, owner=models.EvaluationChange.customer_id)
        self.evaluation_run = self._by_id(models.EvaluationRun)
        self.ruleset = self._by_id(models.RulesetVersion)
        self.task = self._by_id(models.Task, tasks=True)
        self.api_token: DataLoader[int, tokens.TokenInfo | None] = DataLoader(self._api_tokens)
        self.segments_of_customer: DataLoader[int, list[models.Segment]] = DataLoader(self._segments_of_customers)
        self.tags_of_customer: DataLoader[int, list[models.CustomerTag]] = DataLoader(self._tags_of_customers)
        self.attributes_of_customer: DataLoader[int, dict[str, Any]] = DataLoader(self._attributes_of_customers)
        self.categories_of_customer: DataLoader[int, list[str]] = DataLoader(self._categories_of_customers)
        self.history_of_customer: DataLoader[int, list[models.AssignmentHistory]] = DataLoader(
            self._history_of_customers
        )
        self.members_of_team: DataLoader[int, list[models.TeamMember]] = DataLoader(self._members_of_teams)
        self.memberships_of_employee: DataLoader[int, list[models.TeamMember]] = DataLoader(
            self._memberships_of_employees
        )
        self.managed_count = self._grouped_count(models.Customer, models.Customer.manager_id, scoped=False)
        self.team_stats = self._grouped_stats(models.Customer.team_id)
        self.manager_stats = self._grouped_stats(models.Customer.manager_id)
        self.segment_stats = self._grouped_stats(models.SegmentMember.segment_id, _join_segment_members)
        self.interactions_by_employee = self._grouped_count(models.Interaction, models.Interaction.employee_id)
        self.feedback_by_employee = self._grouped_count(models.Feedback, models.Feedback.employee_id)
        self.pages: dict[ChildList, DataLoader[PageKey, Page[Any]]] = {}
        self.counts: dict[ChildList, DataLoader[int, int]] = {}

    def clear(self) -> None:
        """Forget every cached row: called after each mutation commits, so its payload reads fresh data."""
        for value in vars(self).values():
            if isinstance(value, DataLoader):
                value.clear_all()
        loaders: list[DataLoader[Any, Any]] = [*self.pages.values(), *self.counts.values()]
        for loader in loaders:
            loader.clear_all()

    def page_of(self, children: ChildList) -> DataLoader[PageKey, Page[Any]]:
        if children not in self.pages:
            self.pages[children] = DataLoader(lambda keys: self._child_pages(children, keys))
        return self.pages[children]

    def count_of(self, children: ChildList) -> DataLoader[int, int]:
        if children not in self.counts:
            self.counts[children] = DataLoader(lambda keys: self._child_counts(children, keys))
        return self.counts[children]

    # -- loaders -----------------------------------------------------------------------------

    def _by_id(
        self, model: type[Any], scoped: bool = False, owner: InstrumentedAttribute[Any] | None = None, tasks: bool = False
    ) -> DataLoader[int, Any]:
        """Rows by key; `scoped`: customers in the caller's scope only; `owner`: only rows whose customer
        (this column) is in scope; `tasks`: the tasks the caller may see (domain/tasks/records.py).
        The predicate is built at load time, after the scope is bound."""

        async def load(keys: list[int]) -> list[Any]:
            statement = select(model).where(model.id.in_(set(keys)))
            if tasks:
                statement = restricted(statement, task_records.visible(self.scope))
            if scoped:
                statement = restricted(statement, self.scope.customers())
            if owner is not None:
                statement = restricted(statement, self.scope.owned_by_visible(owner))
            rows = await self.db.scalars(statement)
            found = {row.id: row for row in rows}
            return [found.get(key) for key in keys]

        return DataLoader(load)

    async def _customers_with_relations(self, keys: list[int]) -> list[models.Customer | None]:
        """In-scope customers by key, joined with their team and manager, which prime those loaders:
        one statement where the customer's and its relations' batches would be two or three trips."""
        manager = _MANAGER
        statement = (
            select(models.Customer, models.Team, manager)
            .outerjoin(models.Team, models.Team.id == models.Customer.team_id)
            .outerjoin(manager, manager.id == models.Customer.manager_id)
            .where(models.Customer.id.in_(set(keys)))
        )
        in_scope = self.scope.customers()
        if in_scope is not None:
            statement = statement.where(in_scope)
        rows = (await self.db.execute(statement)).all()
        found: dict[int, models.Customer] = {}
        for customer, team, employee in rows:
            found[customer.id] = customer
            if team is not None:
                self.team.prime(team.id, team)
            if employee is not None:
                self.employee.prime(employee.id, employee)
        self.customer.prime_many(found)
        return [found.get(key) for key in keys]

    async def _api_tokens(self, keys: list[int]) -> list[tokens.TokenInfo | None]:
        async with self.db.exclusive() as session:
            found = await tokens.tokens_by_id(session, self.role, keys)
        return [found.get(key) for key in keys]

    async def _segments_of_customers(self, keys: list[int]) -> list[list[models.Segment]]:
        statement = (
            select(models.SegmentMember.customer_id, models.Segment)
            .join(models.Segment, models.Segment.id == models.SegmentMember.segment_id)
            .where(models.SegmentMember.customer_id.in_(set(keys)))
            .order_by(models.Segment.key)
        )
        return _grouped(keys, (await self.db.execute(statement)).all())

    async def _tags_of_customers(self, keys: list[int]) -> list[list[models.CustomerTag]]:
        statement = (
            select(models.CustomerTag.customer_id, models.CustomerTag)
            .where(models.CustomerTag.customer_id.in_(set(keys)))
            .order_by(models.CustomerTag.tag, models.CustomerTag.source)
        )
        return _grouped(keys, (await self.db.execute(statement)).all())

    async def _attributes_of_customers(self, keys: list[int]) -> list[dict[str, Any]]:
        attribute = models.CustomerAttribute
        statement = (
            select(attribute.customer_id, attribute.key, attribute.text_value, attribute.number_value)
            .where(attribute.customer_id.in_(set(keys)))
            .order_by(attribute.key)
        )
        found: dict[int, dict[str, Any]] = defaultdict(dict)
        for customer_id, key, text_value, number_value in (await self.db.execute(statement)).all():
            found[customer_id][key] = _attribute_value(text_value, number_value)
        return [dict(found.get(key, {})) for key in keys]

    async def _categories_of_customers(self, keys: list[int]) -> list[list[str]]:
        purchase = models.Purchase
        statement = (
            select(purchase.customer_id, purchase.category)
            .where(purchase.customer_id.in_(set(keys)), purchase.category.is_not(None))
            .distinct()
            .order_by(purchase.customer_id, purchase.category)
        )
        return _grouped(keys, (await self.db.execute(statement)).all())

    async def _history_of_customers(self, keys: list[int]) -> list[list[models.AssignmentHistory]]:
        history = models.AssignmentHistory
        statement = (
            select(history.customer_id, history)
            .where(history.customer_id.in_(set(keys)))
            .order_by(history.changed_at.desc(), history.id.desc())
        )
        return _grouped(keys, (await self.db.execute(statement)).all())

    async def _members_of_teams(self, keys: list[int]) -> list[list[models.TeamMember]]:
        member = models.TeamMember
        statement = (
            select(member.team_id, member)
            .where(member.team_id.in_(set(keys)))
            .order_by(member.role, member.joined_at, member.id)
        )
        return _grouped(keys, (await self.db.execute(statement)).all())

    async def _memberships_of_employees(self, keys: list[int]) -> list[list[models.TeamMember]]:
        member = models.TeamMember
        statement = (
            select(member.employee_id, member).where(member.employee_id.in_(set(keys))).order_by(member.id)
        )
        return _grouped(keys, (await self.db.execute(statement)).all())

    def _grouped_stats(
        self,
        group_column: InstrumentedAttribute[Any],
        join: Callable[[Select[Any]], Select[Any]] | None = None,
    ) -> DataLoader[int, GroupStats]:
        async def load(keys: list[int]) -> list[GroupStats]:
            statement = select(group_column, *_stats_columns()).select_from(models.Customer)
            if join is not None:
                statement = join(statement)
            statement = restricted(statement.where(group_column.in_(set(keys))), self.scope.customers())
            statement = statement.group_by(group_column)
            found = {row[0]: _stats_from_row(row[1:]) for row in (await self.db.execute(statement)).all()}
            return [found.get(key, GroupStats()) for key in keys]

        return DataLoader(load)

    def _grouped_count(
        self, model: type[Any], group_column: InstrumentedAttribute[Any], scoped: bool = True
    ) -> DataLoader[int, int]:
        """Rows of `model` per group; `scoped`: only rows of visible customers (`model` has `customer_id`)."""

        async def load(keys: list[int]) -> list[int]:
            statement = select(group_column, func.count(model.id)).where(group_column.in_(set(keys)))
            if scoped:
                statement = restricted(statement, self.scope.owned_by_visible(model.customer_id))
            statement = statement.group_by(group_column)
            found = dict((await self.db.execute(statement)).all())
            return [int(found.get(key, 0)) for key in keys]

        return DataLoader(load)

    async def _child_pages(self, children: ChildList, keys: list[PageKey]) -> list[Page[Any]]:
        """Pages for many parents: one window-function query per distinct (ordering, first, after)."""
        by_request: dict[tuple[Ordering, int, str | None], set[int]] = defaultdict(set)
        for parent, ordering, first, after in keys:
            by_request[(ordering, first, after)].add(parent)
        pages: dict[PageKey, Page[Any]] = {}
        for (ordering, first, after), parents in by_request.items():
            found = await self._pages_for(children, parents, ordering, first, after)
            for parent in parents:
                pages[(parent, ordering, first, after)] = found.get(parent, Page(rows=[], has_next=False, after=after))
        return [pages[key] for key in keys]

    async def _pages_for(
        self, children: ChildList, parents: Iterable[int], ordering: Ordering, first: int, after: str | None
    ) -> dict[int, Page[Any]]:
        position = func.row_number().over(partition_by=children.parent_column, order_by=ordering.order_by())
        inner = children.joined(
            select(children.entity, children.parent_column.label("parent_key"), position.label("position"))
        ).where(children.parent_column.in_(set(parents)))
        inner = restricted(inner, self._visible(children))
        if after is not None:
            inner = inner.where(ordering.after(after))
        numbered = inner.subquery()
        child = aliased(children.entity, numbered)
        statement = (
            select(numbered.c.parent_key, child)
            .where(numbered.c.position <= first + 1)
            .order_by(numbered.c.parent_key, numbered.c.position)
        )
        return split_pages((await self.db.execute(statement)).all(), first, after)

    async def _child_counts(self, children: ChildList, keys: list[int]) -> list[int]:
        statement = (
            children.joined(select(children.parent_column, func.count()).select_from(children.entity))
            .where(children.parent_column.in_(set(keys)))
        )
        statement = restricted(statement, self._visible(children)).group_by(children.parent_column)
        found = dict((await self.db.execute(statement)).all())
        return [int(found.get(key, 0)) for key in keys]

    def _visible(self, children: ChildList) -> ColumnElement[bool] | None:
        """The scope predicate for a list of customers or tasks.  Lists of a customer's own rows (purchases, …)
        need none: their parent is a customer the caller was allowed to reach."""
        if children.entity is models.Task:
            return task_records.visible(self.scope)
        return self.scope.customers() if children.entity is models.Customer else None


def _grouped(keys: Sequence[KeyT], pairs: Iterable[tuple[KeyT, ValueT]]) -> list[list[ValueT]]:
    found: dict[KeyT, list[ValueT]] = defaultdict(list)
    for key, value in pairs:
        found[key].append(value)
    return [list(found.get(key, [])) for key in keys]


def _attribute_value(text_value: str | None, number_value: float | None) -> str | int | float | None:
    if number_value is not None:
        return int(number_value) if float(number_value).is_integer() else number_value
    return text_value

