"""The data mutations (docs/graphql.md, 'Mutations'), merged from one module per area."""

from __future__ import annotations

from strawberry.tools import merge_types

from schema.customer_mutations import CustomerMutation
from schema.segment_mutations import SegmentMutation
from schema.staff_mutations import StaffMutation

DataMutation = merge_types("DataMutation", (CustomerMutation, StaffMutation, SegmentMutation))
