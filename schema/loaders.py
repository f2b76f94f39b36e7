"""Per-request DataLoaders: every related object or list is fetched for a whole
page of parents in one SQL statement, so the statement count of a query does
not grow with the page size (see tests/schema/test_statement_count.py).

Customers are scoped here (domain.access.scope): `Loaders.scope` is the caller's scope,
bound by the Authentication extension before any resolver runs.  The customer
by-id loader, every customer child list (pages and counts) and every aggregate
over customer rows add its predicate to their one statement, so an agent gets
null, a shorter list, or a smaller figure, never another agent's customer.  It
starts as "no customer at all": a Loaders that was never bound shows nothing.
The statements themselves are built once, in schema/loader_statements.py.  Most select table columns:
their rows stand in for the entities (read alike, `row.name`), and the annotations name the entity a
row stands for.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from segmenta.domain.access import tokens
from segmenta.domain.access.scope import Scope
from segmenta.domain.tasks.vocabulary import TASK_STATUSES
from segmenta.dsl.money import ZERO
from segmenta.schema.loader_statements import (
    ASSIGNMENT_CHANGES_BY_ID,
    ATTRIBUTES_OF_CUSTOMERS,
    CATEGORIES_OF_CUSTOMERS,
    CHILD_COUNTS,
    CHILD_PAGES,
    CUSTOMERS_BY_ID,
    CUSTOMERS_WITH_RELATIONS,
    EMPLOYEES_BY_ID,
    EVALUATION_CHANGES_BY_ID,
    EVALUATION_RUNS_BY_ID,
    FEEDBACK_BY_EMPLOYEE,
    FEEDBACK_BY_ID,
    HISTORY_OF_CUSTOMERS,
    INTERACTIONS_BY_EMPLOYEE,
    INTERACTIONS_BY_ID,
    MANAGED_COUNTS,
    MANAGER_STATS,
    MEMBERS_OF_TEAMS,
    MEMBERSHIPS_OF_EMPLOYEES,
    PURCHASES_BY_ID,
    RULESETS_BY_ID,
    SEGMENT_STATS,
    SEGMENTS_BY_ID,
    SEGMENTS_OF_CUSTOMERS,
    TAGS_OF_CUSTOMERS,
    TASKS_BY_ID,
    TEAM_STATS,
    TEAMS_BY_ID,
    ChildList,
    join_segment_members,
    restricted,
    split_customer_row,
    stats_columns,
)
from segmenta.schema.pagination import Ordering, Page, page_parameters, split_pages
from segmenta.schema.prebuilt import Prebuilt, keyed
from segmenta.schema.serial import SerialSession
from segmenta.storage import models

KeyT = TypeVar("KeyT", bound=Hashable)
ValueT = TypeVar("ValueT")


PURCHASES_OF_CUSTOMER = ChildList(models.Purchase, models.Purchase.customer_id)
INTERACTIONS_OF_CUSTOMER = ChildList(models.Interaction, models.Interaction.customer_id)
FEEDBACK_OF_CUSTOMER = ChildList(models.Feedback, models.Feedback.customer_id)
CUSTOMERS_OF_TEAM = ChildList(models.Customer, models.Customer.team_id)
CUSTOMERS_OF_MANAGER = ChildList(models.Customer, models.Customer.manager_id)
CUSTOMERS_OF_SEGMENT = ChildList(models.Customer, models.SegmentMember.segment_id, join_segment_members)
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
    statement = restricted(select(*stats_columns()).select_from(models.Customer), where)
    return _stats_from_row((await db.execute(statement)).one())


ResultT = TypeVar("ResultT")

class PrefetchLoader(DataLoader[KeyT, ValueT]):
    """A DataLoader that a page can also fill ahead, in bulk (`fill`): the batch function runs once for
    the page's keys and its values go into a plain map (`ready`) that `loaded_or_later` and `load` read
    first.  `load_many` would make a future per key, a batch and a task to dispatch it, then set each
    future: for a page's four relations that was ~1 ms of a ~17 ms page (bench/api.py)."""

    def __init__(self, load_fn: Callable[[list[KeyT]], Awaitable[list[ValueT]]]) -> None:
        super().__init__(load_fn)
        self.ready: dict[KeyT, ValueT] = {}
        # A ready value as a field's converter made it, per key and converter: a page's customers share
        # a few teams and managers, each converted to its GraphQL object once rather than per customer.
        self._converted: dict[KeyT, dict[Callable[[ValueT], Any], Any]] = {}

    def converted(self, key: KeyT, convert: Callable[[ValueT], ResultT]) -> ResultT:
        """`convert` of the ready value of `key`, made once per request."""
        made = self._converted.get(key)
        if made is None:
            made = self._converted[key] = {}
        if convert not in made:
            made[convert] = convert(self.ready[key])
        return cast(ResultT, made[convert])

    async def fill(self, keys: Iterable[KeyT]) -> None:
        """Load the values of `keys` not held yet, in one call of the batch function."""
        missing = [key for key in dict.fromkeys(keys) if key not in self.ready and self.cache_map.get(key) is None]
        if missing:
            values = await self.load_fn(missing)
            # A key whose value is an error is left to `load`, which hands the error to its caller.
            self.ready.update(
                (key, value) for key, value in zip(missing, values, strict=True) if not isinstance(value, BaseException)
            )

    def load(self, key: KeyT) -> Awaitable[ValueT]:
        if key in self.ready:
            future: asyncio.Future[ValueT] = self.loop.create_future()
            future.set_result(self.ready[key])
            return future
        return super().load(key)

    def clear(self, key: KeyT) -> None:
        self.ready.pop(key, None)
        self._converted.pop(key, None)
        if self.cache_map.get(key) is not None:  # Strawberry's cache refuses to delete a key it lacks
            super().clear(key)

    def clear_many(self, keys: Iterable[KeyT]) -> None:
        for key in keys:
            self.clear(key)

    def clear_all(self) -> None:
        self.ready.clear()
        self._converted.clear()
        super().clear_all()


def loaded_or_later(loader: DataLoader[Any, ValueT], key: Any, convert: Callable[[ValueT], ResultT]) -> ResultT:
    """`convert` of the loader's value for `key` when the loader already holds it, else an awaitable of it.

    For a field resolver written as a plain function: graphql-core awaits a result that is awaitable,
    and completes any other at once, without the task it runs each awaitable field in.  Relations
    loaded ahead for a whole page (schema/prefetch.py) are so answered with no task per field.  The
    declared type is the value's (the awaitable case is graphql-core's to await), so the field's type
    in the schema stays the value's."""
    if isinstance(loader, PrefetchLoader) and key in loader.ready:
        return loader.converted(key, convert)
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
        self.pages: dict[ChildList, DataLoader[PageKey, Page[Any]]] = {}
        self.counts: dict[ChildList, DataLoader[int, int]] = {}

    # Each loader is made on a request's first use of it: a request uses two or three of the thirty, and
    # making all of them cost ~60 µs a request (a twentieth of a one-customer request's CPU).

    @cached_property
    def customer(self) -> DataLoader[int, Any]:
        return self._by_id(CUSTOMERS_BY_ID)

    @cached_property
    def team(self) -> PrefetchLoader[int, Any]:
        return self._by_id(TEAMS_BY_ID)

    @cached_property
    def employee(self) -> PrefetchLoader[int, Any]:
        return self._by_id(EMPLOYEES_BY_ID)

    @cached_property
    def customer_with_relations(self) -> DataLoader[int, Any]:
        """`customer(id)` selecting its team or manager: the customer with both in one statement."""
        return DataLoader(self._customers_with_relations)

    @cached_property
    def segment(self) -> DataLoader[int, Any]:
        return self._by_id(SEGMENTS_BY_ID)

    # The rows `node(id)` can reach besides those above: a customer's own rows only when the customer
    # is in scope (as through `customer(id)`), runs and rulesets for everyone, tokens for admins.

    @cached_property
    def purchase(self) -> DataLoader[int, Any]:
        return self._by_id(PURCHASES_BY_ID)

    @cached_property
    def interaction(self) -> DataLoader[int, Any]:
        return self._by_id(INTERACTIONS_BY_ID)

    @cached_property
    def feedback(self) -> DataLoader[int, Any]:
        return self._by_id(FEEDBACK_BY_ID)

    @cached_property
    def assignment_change(self) -> DataLoader[int, Any]:
        return self._by_id(ASSIGNMENT_CHANGES_BY_ID)

    @cached_property
    def evaluation_change(self) -> DataLoader[int, Any]:
        return self._by_id(EVALUATION_CHANGES_BY_ID)

    @cached_property
    def evaluation_run(self) -> DataLoader[int, Any]:
        return self._by_id(EVALUATION_RUNS_BY_ID)

    @cached_property
    def ruleset(self) -> DataLoader[int, Any]:
        return self._by_id(RULESETS_BY_ID)

    @cached_property
    def task(self) -> DataLoader[int, Any]:
        return self._by_id(TASKS_BY_ID)

    @cached_property
    def api_token(self) -> DataLoader[int, tokens.TokenInfo | None]:
        return DataLoader(self._api_tokens)

    @cached_property
    def segments_of_customer(self) -> PrefetchLoader[int, list[models.Segment]]:
        return PrefetchLoader(self._segments_of_customers)

    @cached_property
    def tags_of_customer(self) -> PrefetchLoader[int, list[models.CustomerTag]]:
        return PrefetchLoader(self._tags_of_customers)

    @cached_property
    def attributes_of_customer(self) -> PrefetchLoader[int, dict[str, Any]]:
        return PrefetchLoader(self._attributes_of_customers)

    @cached_property
    def categories_of_customer(self) -> DataLoader[int, list[str]]:
        return DataLoader(self._categories_of_customers)

    @cached_property
    def history_of_customer(self) -> DataLoader[int, list[models.AssignmentHistory]]:
        return DataLoader(self._history_of_customers)

    @cached_property
    def members_of_team(self) -> DataLoader[int, list[models.TeamMember]]:
        return DataLoader(self._members_of_teams)

    @cached_property
    def memberships_of_employee(self) -> DataLoader[int, list[models.TeamMember]]:
        return DataLoader(self._memberships_of_employees)

    @cached_property
    def managed_count(self) -> DataLoader[int, int]:
        return self._grouped_count(MANAGED_COUNTS)

    @cached_property
    def team_stats(self) -> DataLoader[int, GroupStats]:
        return self._grouped_stats(TEAM_STATS)

    @cached_property
    def manager_stats(self) -> DataLoader[int, GroupStats]:
        return self._grouped_stats(MANAGER_STATS)

    @cached_property
    def segment_stats(self) -> DataLoader[int, GroupStats]:
        return self._grouped_stats(SEGMENT_STATS)

    @cached_property
    def interactions_by_employee(self) -> DataLoader[int, int]:
        return self._grouped_count(INTERACTIONS_BY_EMPLOYEE)

    @cached_property
    def feedback_by_employee(self) -> DataLoader[int, int]:
        return self._grouped_count(FEEDBACK_BY_EMPLOYEE)

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

    def _by_id(self, statements: Prebuilt[Select[Any]]) -> PrefetchLoader[int, Any]:
        """Rows by key, with the scope's predicate of `statements` (bound at load time, after the scope is):
        entities, or rows of columns read alike (`row.id`, `row.name`, …)."""

        async def load(keys: list[int]) -> list[Any]:
            rows = (await self.db.execute(statements(self.scope), keyed(keys, self.scope))).all()
            found = {row.id: row for row in rows}
            return [found.get(key) for key in keys]

        return PrefetchLoader(load)

    async def _customers_with_relations(self, keys: list[int]) -> list[Any]:
        """In-scope customers by key, joined with their team and manager, which prime those loaders:
        one statement where the customer's and its relations' batches would be two or three trips."""
        statement = CUSTOMERS_WITH_RELATIONS(self.scope)
        rows = (await self.db.execute(statement, keyed(keys, self.scope))).all()
        found: dict[int, Any] = {}
        for customer, team, employee in map(split_customer_row, rows):
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
        rows = (await self.db.execute(SEGMENTS_OF_CUSTOMERS, keyed(keys))).all()
        return _grouped(keys, ((row.customer_id, row) for row in rows))

    async def _tags_of_customers(self, keys: list[int]) -> list[list[models.CustomerTag]]:
        rows = (await self.db.execute(TAGS_OF_CUSTOMERS, keyed(keys))).all()
        return _grouped(keys, ((row.customer_id, row) for row in rows))

    async def _attributes_of_customers(self, keys: list[int]) -> list[dict[str, Any]]:
        found: dict[int, dict[str, Any]] = defaultdict(dict)
        rows = (await self.db.execute(ATTRIBUTES_OF_CUSTOMERS, keyed(keys))).all()
        for customer_id, key, text_value, number_value in rows:
            found[customer_id][key] = _attribute_value(text_value, number_value)
        return [dict(found.get(key, {})) for key in keys]

    async def _categories_of_customers(self, keys: list[int]) -> list[list[str]]:
        return _grouped(keys, (await self.db.execute(CATEGORIES_OF_CUSTOMERS, keyed(keys))).all())

    async def _history_of_customers(self, keys: list[int]) -> list[list[models.AssignmentHistory]]:
        return _grouped(keys, (await self.db.execute(HISTORY_OF_CUSTOMERS, keyed(keys))).all())

    async def _members_of_teams(self, keys: list[int]) -> list[list[models.TeamMember]]:
        return _grouped(keys, (await self.db.execute(MEMBERS_OF_TEAMS, keyed(keys))).all())

    async def _memberships_of_employees(self, keys: list[int]) -> list[list[models.TeamMember]]:
        return _grouped(keys, (await self.db.execute(MEMBERSHIPS_OF_EMPLOYEES, keyed(keys))).all())

    def _grouped_stats(self, statements: Prebuilt[Select[Any]]) -> DataLoader[int, GroupStats]:
        async def load(keys: list[int]) -> list[GroupStats]:
            rows = (await self.db.execute(statements(self.scope), keyed(keys, self.scope))).all()
            found = {row[0]: _stats_from_row(row[1:]) for row in rows}
            return [found.get(key, GroupStats()) for key in keys]

        return DataLoader(load)

    def _grouped_count(self, statements: Prebuilt[Select[Any]]) -> DataLoader[int, int]:
        async def load(keys: list[int]) -> list[int]:
            found = dict((await self.db.execute(statements(self.scope), keyed(keys, self.scope))).all())
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
        statement = CHILD_PAGES((children, ordering, after is not None), self.scope)
        parameters = keyed(parents, self.scope, **page_parameters(ordering, first, after))
        return split_pages((await self.db.execute(statement, parameters)).all(), first, after)

    async def _child_counts(self, children: ChildList, keys: list[int]) -> list[int]:
        statement = CHILD_COUNTS(children, self.scope)
        found = dict((await self.db.execute(statement, keyed(keys, self.scope))).all())
        return [int(found.get(key, 0)) for key in keys]


def _grouped(keys: Sequence[KeyT], pairs: Iterable[tuple[KeyT, ValueT]]) -> list[list[ValueT]]:
    found: dict[KeyT, list[ValueT]] = defaultdict(list)
    for key, value in pairs:
        found[key].append(value)
    return [list(found.get(key, [])) for key in keys]


def _attribute_value(text_value: str | None, number_value: float | None) -> str | int | float | None:
    if number_value is not None:
        return int(number_value) if float(number_value).is_integer() else number_value
    return text_value

