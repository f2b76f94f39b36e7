"""The data mutations of SPEC §5, merged from one module per area."""

from __future__ import annotations

from strawberry.tools import merge_types

from schema.customer_mutations import CustomerMutation

DataMutation = merge_types("DataMutation", (CustomerMutation,))
