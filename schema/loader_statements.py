"""The SQL of the per-request loaders (schema/loaders.py), each statement built once per shape of the
caller's scope and given its keys at execution (schema/prebuilt.py says why).  The scope's predicate is
part of every statement over customer rows, exactly as when the loaders built them per request.

Rows by key, a customer with its team and manager, a customer's segments and tags (and the customers
page, schema/queries.py) are selected as their tables' columns, not as ORM entities: what reads them (the schema's types, `from_row`) only
reads attributes, which a Row answers by the same names (every mapped attribute is named as its
column), and nothing writes through them.  Loading entities (an instance, its state and identity-map
entry per row, instrumented attribute reads) was the larger part of the SQLAlchemy CPU of a page.
Child lists (ChildList pages) still load entities.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, aliased

from segmenta.domain.access.scope import Scope
from segmenta.domain.tasks import records as task_records
from segmenta.schema.pagination import PAGE_LIMIT, Ordering
from segmenta.schema.prebuilt import KEYS, Prebuilt, PrebuiltFamily
from segmenta.storage import models
from segmenta.storage.guard import bounded_read


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


def join_segment_members(statement: Select[Any]) -> Select[Any]:
    return statement.join(models.SegmentMember, models.SegmentMember.customer_id == models.Customer.id)


def stats_columns() -> list[ColumnElement[Any]]:
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


def restricted(statement: Select[Any], predicate: ColumnElement[bool] | None) -> Select[Any]:
    """`statement` with the scope predicate added; unchanged for a caller who sees everything."""
    return statement if predicate is None else statement.where(predicate)


# The scope's predicate on a loader's rows.
Visible = Callable[[Scope], ColumnElement[bool] | None]


def _rows_by_id(model: type[Any], visible: Visible | None = None) -> Prebuilt[Select[Any]]:
    """Rows of `model`'s table by key (its columns: see the module's docstring); `visible`: the scope's
    predicate on them (the rows of every key otherwise)."""

    def build(scope: Scope) -> Select[Any]:
        statement = select(*model.__table__.c).where(model.id.in_(KEYS))
        return bounded_read(statement if visible is None else restricted(statement, visible(scope)))

    return Prebuilt(build)


def _owned(owner: InstrumentedAttribute[Any]) -> Visible:
    """Only rows whose customer (this column) is in scope."""
    return lambda scope: scope.owned_by_visible(owner)


CUSTOMERS_BY_ID = _rows_by_id(models.Customer, Scope.customers)
TEAMS_BY_ID = _rows_by_id(models.Team)
EMPLOYEES_BY_ID = _rows_by_id(models.Employee)
SEGMENTS_BY_ID = _rows_by_id(models.Segment)
PURCHASES_BY_ID = _rows_by_id(models.Purchase, _owned(models.Purchase.customer_id))
INTERACTIONS_BY_ID = _rows_by_id(models.Interaction, _owned(models.Interaction.customer_id))
FEEDBACK_BY_ID = _rows_by_id(models.Feedback, _owned(models.Feedback.customer_id))
ASSIGNMENT_CHANGES_BY_ID = _rows_by_id(models.AssignmentHistory, _owned(models.AssignmentHistory.customer_id))
EVALUATION_CHANGES_BY_ID = _rows_by_id(models.EvaluationChange, _owned(models.EvaluationChange.customer_id))
EVALUATION_RUNS_BY_ID = _rows_by_id(models.EvaluationRun)
RULESETS_BY_ID = _rows_by_id(models.RulesetVersion)
# The tasks the caller may see (domain/tasks/records.py).
TASKS_BY_ID = _rows_by_id(models.Task, task_records.visible)



_CUSTOMERS = models.Customer.__table__
_TEAMS = models.Team.__table__
_MANAGERS = models.Employee.__table__.alias("manager")
# A team's and an employee's columns cut out of a customer's joined row (split_customer_row), read by the
# same names as their own rows.
TeamColumns = namedtuple("TeamColumns", list(_TEAMS.c.keys()))  # type: ignore[misc]
EmployeeColumns = namedtuple("EmployeeColumns", list(_MANAGERS.c.keys()))  # type: ignore[misc]
_TEAM_START = len(_CUSTOMERS.c)
_MANAGER_START = _TEAM_START + len(_TEAMS.c)


def _customers_with_relations_statement(scope: Scope) -> Select[Any]:
    # The customer's own columns keep their names; its team's and manager's are read by position.
    statement = (
        select(
            *_CUSTOMERS.c,
            *(column.label(f"team__{column.name}") for column in _TEAMS.c),
            *(column.label(f"manager__{column.name}") for column in _MANAGERS.c),
        )
        .select_from(
            _CUSTOMERS.outerjoin(_TEAMS, _TEAMS.c.id == _CUSTOMERS.c.team_id).outerjoin(
                _MANAGERS, _MANAGERS.c.id == _CUSTOMERS.c.manager_id
            )
        )
        .where(_CUSTOMERS.c.id.in_(KEYS))
    )
    return bounded_read(restricted(statement, scope.customers()))


def split_customer_row(row: Row[Any]) -> tuple[Row[Any], Any, Any]:
    """A row of CUSTOMERS_WITH_RELATIONS as the customer (the row itself), its team and its manager (each
    None when the customer has none)."""
    team = TeamColumns._make(row[_TEAM_START:_MANAGER_START]) if row[_TEAM_START] is not None else None
    manager = EmployeeColumns._make(row[_MANAGER_START:]) if row[_MANAGER_START] is not None else None
    return row, team, manager


CUSTOMERS_WITH_RELATIONS = Prebuilt(_customers_with_relations_statement)
# A customer has few segments and tags, found through the customer_id indexes: bounded reads.
SEGMENTS_OF_CUSTOMERS = bounded_read(
    select(models.SegmentMember.customer_id, *models.Segment.__table__.c)
    .join(models.Segment, models.Segment.id == models.SegmentMember.segment_id)
    .where(models.SegmentMember.customer_id.in_(KEYS))
    .order_by(models.Segment.key)
)
TAGS_OF_CUSTOMERS = bounded_read(
    select(models.CustomerTag.customer_id, models.CustomerTag.tag, models.CustomerTag.source)
    .where(models.CustomerTag.customer_id.in_(KEYS))
    .order_by(models.CustomerTag.tag, models.CustomerTag.source)
)
ATTRIBUTES_OF_CUSTOMERS = (
    select(
        models.CustomerAttribute.customer_id,
        models.CustomerAttribute.key,
        models.CustomerAttribute.text_value,
        models.CustomerAttribute.number_value,
    )
    .where(models.CustomerAttribute.customer_id.in_(KEYS))
    .order_by(models.CustomerAttribute.key)
)
CATEGORIES_OF_CUSTOMERS = (
    select(models.Purchase.customer_id, models.Purchase.category)
    .where(models.Purchase.customer_id.in_(KEYS), models.Purchase.category.is_not(None))
    .distinct()
    .order_by(models.Purchase.customer_id, models.Purchase.category)
)
HISTORY_OF_CUSTOMERS = (
    select(models.AssignmentHistory.customer_id, models.AssignmentHistory)
    .where(models.AssignmentHistory.customer_id.in_(KEYS))
    .order_by(models.AssignmentHistory.changed_at.desc(), models.AssignmentHistory.id.desc())
)
MEMBERS_OF_TEAMS = (
    select(models.TeamMember.team_id, models.TeamMember)
    .where(models.TeamMember.team_id.in_(KEYS))
    .order_by(models.TeamMember.role, models.TeamMember.joined_at, models.TeamMember.id)
)
MEMBERSHIPS_OF_EMPLOYEES = (
    select(models.TeamMember.employee_id, models.TeamMember)
    .where(models.TeamMember.employee_id.in_(KEYS))
    .order_by(models.TeamMember.id)
)


def _grouped_stats_statement(
    group_column: InstrumentedAttribute[Any], join: Callable[[Select[Any]], Select[Any]] | None = None
) -> Prebuilt[Select[Any]]:
    """The figures of the in-scope customers of each group (a group: a value of `group_column`)."""

    def build(scope: Scope) -> Select[Any]:
        statement = select(group_column, *stats_columns()).select_from(models.Customer)
        if join is not None:
            statement = join(statement)
        statement = restricted(statement.where(group_column.in_(KEYS)), scope.customers())
        return statement.group_by(group_column)

    return Prebuilt(build)


def _grouped_count_statement(
    model: type[Any], group_column: InstrumentedAttribute[Any], scoped: bool = True
) -> Prebuilt[Select[Any]]:
    """The rows of `model` per group; `scoped`: only rows of visible customers (`model` has `customer_id`)."""

    def build(scope: Scope) -> Select[Any]:
        statement = select(group_column, func.count(model.id)).where(group_column.in_(KEYS))
        if scoped:
            statement = restricted(statement, scope.owned_by_visible(model.customer_id))
        return statement.group_by(group_column)

    return Prebuilt(build)


TEAM_STATS = _grouped_stats_statement(models.Customer.team_id)
MANAGER_STATS = _grouped_stats_statement(models.Customer.manager_id)
SEGMENT_STATS = _grouped_stats_statement(models.SegmentMember.segment_id, join_segment_members)
MANAGED_COUNTS = _grouped_count_statement(models.Customer, models.Customer.manager_id, scoped=False)
INTERACTIONS_BY_EMPLOYEE = _grouped_count_statement(models.Interaction, models.Interaction.employee_id)
FEEDBACK_BY_EMPLOYEE = _grouped_count_statement(models.Feedback, models.Feedback.employee_id)


def _visible(children: ChildList, scope: Scope) -> ColumnElement[bool] | None:
    """The scope predicate for a list of customers or tasks.  Lists of a customer's own rows (purchases, …)
    need none: their parent is a customer the caller was allowed to reach."""
    if children.entity is models.Task:
        return task_records.visible(scope)
    return scope.customers() if children.entity is models.Customer else None


def _child_pages_statement(key: tuple[ChildList, Ordering, bool], scope: Scope) -> Select[Any]:
    """Pages of `children` for many parents, the rows numbered per parent in `ordering` (after a cursor,
    when the flag says one is given), at most PAGE_LIMIT of each."""
    children, ordering, after_given = key
    position = func.row_number().over(partition_by=children.parent_column, order_by=ordering.order_by())
    inner = children.joined(
        select(children.entity, children.parent_column.label("parent_key"), position.label("position"))
    ).where(children.parent_column.in_(KEYS))
    inner = restricted(inner, _visible(children, scope))
    if after_given:
        inner = inner.where(ordering.after())
    numbered = inner.subquery()
    child = aliased(children.entity, numbered)
    return (
        select(numbered.c.parent_key, child)
        .where(numbered.c.position <= PAGE_LIMIT)
        .order_by(numbered.c.parent_key, numbered.c.position)
    )


def _child_counts_statement(children: ChildList, scope: Scope) -> Select[Any]:
    statement = children.joined(
        select(children.parent_column, func.count()).select_from(children.entity)
    ).where(children.parent_column.in_(KEYS))
    return restricted(statement, _visible(children, scope)).group_by(children.parent_column)


CHILD_PAGES = PrebuiltFamily(_child_pages_statement)
CHILD_COUNTS = PrebuiltFamily(_child_counts_statement)
