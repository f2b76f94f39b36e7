"""The sort orders lists offer, each a keyset `Ordering` over a non-null column."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import strawberry

from segmenta.schema.pagination import Ordering
from segmenta.storage import models

_customer = models.Customer


@strawberry.enum(description="Sort order of a customer list; ties are broken by creation order, in the same direction.")
class CustomerOrder(Enum):
    _value_: str  # the word, for type checkers (members are enum_value definitions)
    NAME_ASC = strawberry.enum_value("name_asc", description="By name, A to Z (the default).")
    NAME_DESC = strawberry.enum_value("name_desc", description="By name, Z to A.")
    CODE_ASC = strawberry.enum_value("code_asc", description="By external code, ascending.")
    CODE_DESC = strawberry.enum_value("code_desc", description="By external code, descending.")
    CREATED_AT_ASC = strawberry.enum_value("created_at_asc", description="Oldest customer first.")
    CREATED_AT_DESC = strawberry.enum_value("created_at_desc", description="Newest customer first.")
    TOTAL_SPENT_ASC = strawberry.enum_value("total_spent_asc", description="Smallest total spent first.")
    TOTAL_SPENT_DESC = strawberry.enum_value("total_spent_desc", description="Largest total spent first.")
    PURCHASE_COUNT_ASC = strawberry.enum_value("purchase_count_asc", description="Fewest purchases first.")
    PURCHASE_COUNT_DESC = strawberry.enum_value("purchase_count_desc", description="Most purchases first.")


# The `orderBy` argument of customer lists.
CustomerOrderArgument = Annotated[CustomerOrder, strawberry.argument(description="The sort order; default NAME_ASC.")]

CUSTOMER_ORDERINGS: dict[CustomerOrder, Ordering] = {
    CustomerOrder.NAME_ASC: Ordering(_customer.name, _customer.id, "text"),
    CustomerOrder.NAME_DESC: Ordering(_customer.name, _customer.id, "text", descending=True),
    CustomerOrder.CODE_ASC: Ordering(_customer.code, _customer.id, "text"),
    CustomerOrder.CODE_DESC: Ordering(_customer.code, _customer.id, "text", descending=True),
    CustomerOrder.CREATED_AT_ASC: Ordering(_customer.created_at, _customer.id, "datetime"),
    CustomerOrder.CREATED_AT_DESC: Ordering(_customer.created_at, _customer.id, "datetime", descending=True),
    CustomerOrder.TOTAL_SPENT_ASC: Ordering(_customer.total_spent, _customer.id, "money"),
    CustomerOrder.TOTAL_SPENT_DESC: Ordering(_customer.total_spent, _customer.id, "money", descending=True),
    CustomerOrder.PURCHASE_COUNT_ASC: Ordering(_customer.purchase_count, _customer.id, "number"),
    CustomerOrder.PURCHASE_COUNT_DESC: Ordering(_customer.purchase_count, _customer.id, "number", descending=True),
}

NEWEST_PURCHASES = Ordering(models.Purchase.purchased_at, models.Purchase.id, "datetime", descending=True)
NEWEST_INTERACTIONS = Ordering(models.Interaction.occurred_at, models.Interaction.id, "datetime", descending=True)
NEWEST_FEEDBACK = Ordering(models.Feedback.created_at, models.Feedback.id, "datetime", descending=True)


@strawberry.enum(description="Sort order of a task list; ties are broken by task creation order, in the same direction.")
class TaskOrder(Enum):
    _value_: str
    DUE_AT_ASC = strawberry.enum_value("due_at_asc", description="Soonest due first (the default).")
    DUE_AT_DESC = strawberry.enum_value("due_at_desc", description="Latest due first.")
    CREATED_AT_ASC = strawberry.enum_value("created_at_asc", description="Oldest task first.")
    CREATED_AT_DESC = strawberry.enum_value("created_at_desc", description="Newest task first.")


TaskOrderArgument = Annotated[TaskOrder, strawberry.argument(description="The sort order; default DUE_AT_ASC.")]

_task = models.Task
TASK_ORDERINGS: dict[TaskOrder, Ordering] = {
    TaskOrder.DUE_AT_ASC: Ordering(_task.due_at, _task.id, "datetime"),
    TaskOrder.DUE_AT_DESC: Ordering(_task.due_at, _task.id, "datetime", descending=True),
    TaskOrder.CREATED_AT_ASC: Ordering(_task.created_at, _task.id, "datetime"),
    TaskOrder.CREATED_AT_DESC: Ordering(_task.created_at, _task.id, "datetime", descending=True),
}
SOONEST_DUE = TASK_ORDERINGS[TaskOrder.DUE_AT_ASC]
