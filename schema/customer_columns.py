"""The columns of `customers` each field of the Customer type reads, so that a page of customers selects
only the columns its query asks for (schema/queries.py).

Why: SQLAlchemy converts every column of every row it returns (on SQLite a date or time is parsed from
text), whether the query reads it or not.  A page of 101 rows of all 41 columns cost ~1.9 ms of CPU to
fetch, of 9 columns ~1.0 ms.  The Customer type converts a field only when the query reads it
(schema/types.py, schema/metric_types.py), so a row with just the columns of the selected fields serves
it the same.  A field that is not listed here (one added later) makes the page select every column,
and so does anything this module does not understand: the list can only be too long, never too short
(tests/schema/test_customer_columns.py reads every field alone through a page and compares it with the
full row).
"""

from __future__ import annotations

from collections.abc import Iterable

from strawberry.types.nodes import Selection

from segmenta.schema.pagination import Ordering
from segmenta.schema.prefetch import node_selections, selected_fields

# Read whatever the query selects: the key (the ID, cursors, every list under a customer), team and manager.
ALWAYS = frozenset({"id", "team_id", "manager_id"})
# The day-based metrics are worked out together, from these (CustomerMetrics._day_metrics).
_DAYS = ("last_purchase_at", "last_contact_at", "created_at", "birthday")

# GraphQL field of Customer -> the columns it reads besides ALWAYS.
CUSTOMER_FIELDS: dict[str, tuple[str, ...]] = {
    "__typename": (),
    "id": (),
    "code": ("code",),
    "name": ("name",),
    "kind": ("kind",),
    "industry": ("industry",),
    "size": ("size",),
    "region": ("region",),
    "city": ("city",),
    "country": ("country",),
    "lifecycle": ("lifecycle",),
    "purchasingPower": ("purchasing_power",),
    "channel": ("channel",),
    "email": ("email",),
    "phone": ("phone",),
    "address": ("address",),
    "age": ("age",),
    "gender": ("gender",),
    "income": ("income",),
    "occupation": ("occupation",),
    "birthday": ("birthday",),
    "createdAt": ("created_at",),
    "updatedAt": ("updated_at",),
    "assignmentLocked": ("assignment_locked",),
    "decidingRule": ("deciding_rule",),
    # Relations and lists: the key, team or manager only.
    "team": (),
    "manager": (),
    "segments": (),
    "tags": (),
    "manualTags": (),
    "ruleTags": (),
    "attributes": (),
    "purchases": (),
    "interactions": (),
    "feedback": (),
    "tasks": (),
    "assignmentHistory": (),
}

# GraphQL field of CustomerMetrics -> the columns it reads.
METRIC_FIELDS: dict[str, tuple[str, ...]] = {
    "__typename": (),
    "purchaseCount": ("purchase_count",),
    "totalSpent": ("total_spent",),
    "avgOrderValue": ("total_spent", "purchase_count"),
    "firstPurchaseAt": ("first_purchase_at",),
    "lastPurchaseAt": ("last_purchase_at",),
    "daysSincePurchase": _DAYS,
    "avgSatisfaction": ("survey_sum", "survey_count"),
    "nps": ("nps_sum", "nps_count"),
    "feedbackCount": ("feedback_count",),
    "complaintCount": ("complaint_count",),
    "openComplaints": ("open_complaints",),
    "interactionCount": ("interaction_count",),
    "lastContactAt": ("last_contact_at",),
    "daysSinceContact": _DAYS,
    "tenureDays": _DAYS,
    "daysToBirthday": _DAYS,
    "productCategories": (),
}


def page_columns(selected: Iterable[Selection], ordering: Ordering) -> frozenset[str] | None:
    """The columns the nodes of a customers connection read (its order's for the cursors included), or
    None: every column (a field this module does not know)."""
    columns = set(ALWAYS) | {ordering.column.key, ordering.key_column.key}
    for field in node_selections(selected):
        if field.name == "metrics":
            for metric in selected_fields(field.selections):
                if metric.name not in METRIC_FIELDS:
                    return None
                columns.update(METRIC_FIELDS[metric.name])
        elif field.name in CUSTOMER_FIELDS:
            columns.update(CUSTOMER_FIELDS[field.name])
        else:
            return None
    return frozenset(columns)
