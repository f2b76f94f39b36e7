"""The data mutations (docs/graphql.md, 'Mutations'), merged from one module per area."""

from __future__ import annotations

from strawberry.tools import merge_types

from segmenta.schema.customer_mutations import CustomerMutation
from segmenta.schema.segment_mutations import SegmentMutation
from segmenta.schema.staff_mutations import StaffMutation

DataMutation = merge_types("DataMutation", (CustomerMutation, StaffMutation, SegmentMutation))
