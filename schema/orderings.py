"""The sort orders lists offer, each a keyset `Ordering` over a non-null column."""

from __future__ import annotations

from enum import Enum

import strawberry

from segmenta.schema.pagination import Ordering
from segmenta.storage import models

_customer = models.Customer


@strawberry.enum(description="Sort order of a customer list; ties are broken by creation order.")
class CustomerOrder(Enum):
    NAME_ASC = "name_asc"
    NAME_DESC = "name_desc"
    CODE_ASC = "code_asc"
    CODE_DESC = "code_desc"
    CREATED_AT_ASC = "created_at_asc"
    CREATED_AT_DESC = "created_at_desc"
    TOTAL_SPENT_ASC = "total_spent_asc"
    TOTAL_SPENT_DESC = "total_spent_desc"
    PURCHASE_COUNT_ASC = "purchase_count_asc"
    PURCHASE_COUNT_DESC = "purchase_count_desc"


CUSTOMER_ORDERINGS: dict[CustomerOrder, Ordering] = {
    CustomerOrder.NAME_ASC: Ordering(_customer.name, _customer.id, "text"),
    CustomerOrder.NAME_DESC: Ordering(_customer.name, _customer.id, "text", descending=True),
    CustomerOrder.CODE_ASC: Ordering(_customer.code, _customer.id, "text"),
    CustomerOrder.CODE_DESC: Ordering(_customer.code, _customer.id, "text", descending=True),
    CustomerOrder.CREATED_AT_ASC: Ordering(_customer.created_at, _customer.id, "datetime"),
    CustomerOrder.CREATED_AT_DESC: Ordering(_customer.created_at, _customer.id, "datetime", descending=True),
    CustomerOrder.TOTAL_SPENT_ASC: Ordering(_customer.total_spent, _customer.id, "number"),
    CustomerOrder.TOTAL_SPENT_DESC: Ordering(_customer.total_spent, _customer.id, "number", descending=True),
    CustomerOrder.PURCHASE_COUNT_ASC: Ordering(_customer.purchase_count, _customer.id, "number"),
    CustomerOrder.PURCHASE_COUNT_DESC: Ordering(_customer.purchase_count, _customer.id, "number", descending=True),
}

NEWEST_PURCHASES = Ordering(models.Purchase.purchased_at, models.Purchase.id, "datetime", descending=True)
NEWEST_INTERACTIONS = Ordering(models.Interaction.occurred_at, models.Interaction.id, "datetime", descending=True)
NEWEST_FEEDBACK = Ordering(models.Feedback.created_at, models.Feedback.id, "datetime", descending=True)
