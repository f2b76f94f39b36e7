"""Warnings about a request that still ran: resolvers add them to `info.context.warnings`, and this
extension puts them in the response's top-level `extensions.warnings` (absent when there are none).

Why not `errors`: a GraphQL client treats any entry there as a failure, and a condition with a
warning (`size = hugee`) is valid and ran; why not silence: an empty page then looks like "no such
customers" when the client misspelled a value.
"""

from __future__ import annotations

from typing import Any

from strawberry.extensions import SchemaExtension

from segmenta.schema.context import Context


class ResponseWarnings(SchemaExtension):
    def get_results(self) -> dict[str, Any]:
        context = self.execution_context.context
        if isinstance(context, Context) and context.warnings:
            return {"warnings": list(context.warnings)}
        return {}
