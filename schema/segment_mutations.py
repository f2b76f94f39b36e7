"""Mutations on manual segments: create, add, remove, move."""

from __future__ import annotations

import strawberry

from segmenta.domain.routing import segments
from segmenta.schema.context import Info
from segmenta.schema.inputs import SegmentInput, as_create_data
from segmenta.schema.payloads import MoveToSegmentPayload, SegmentPayload, in_transaction, input_ids
from segmenta.schema.permissions import CanWriteSegments
from segmenta.schema.types import Segment
from segmenta.storage import models


def _segment(row: models.Segment | None) -> Segment | None:
    return Segment.from_row(row) if row is not None else None


@strawberry.type
class SegmentMutation:
    @strawberry.mutation(permission_classes=[CanWriteSegments], description="A new MANUAL segment.")
    async def create_segment(self, info: Info, input: SegmentInput) -> SegmentPayload:
        session = info.context.session
        row, errors = await in_transaction(
            info, lambda: segments.create_segment(session, as_create_data(input)), prefix="input"
        )
        return SegmentPayload(segment=_segment(row), user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanWriteSegments], description="Manual segments only; customers already in stay in."
    )
    async def add_to_segment(
        self, info: Info, segment_key: str, customer_ids: list[strawberry.ID]
    ) -> SegmentPayload:
        session = info.context.session

        async def work() -> models.Segment:
            ids = input_ids(customer_ids, "Customer", "customer_ids")
            return await segments.add_to_segment(session, segment_key, ids)

        row, errors = await in_transaction(info, work)
        return SegmentPayload(segment=_segment(row), user_errors=errors)

    @strawberry.mutation(permission_classes=[CanWriteSegments], description="Manual segments only.")
    async def remove_from_segment(
        self, info: Info, segment_key: str, customer_ids: list[strawberry.ID]
    ) -> SegmentPayload:
        session = info.context.session

        async def work() -> models.Segment:
            ids = input_ids(customer_ids, "Customer", "customer_ids")
            return await segments.remove_from_segment(session, segment_key, ids)

        row, errors = await in_transaction(info, work)
        return SegmentPayload(segment=_segment(row), user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanWriteSegments],
        description="Remove the customers from `fromKey` and add them to `toKey`, in one transaction.",
    )
    async def move_to_segment(
        self, info: Info, from_key: str, to_key: str, customer_ids: list[strawberry.ID]
    ) -> MoveToSegmentPayload:
        session = info.context.session

        async def work() -> tuple[models.Segment, models.Segment]:
            ids = input_ids(customer_ids, "Customer", "customer_ids")
            return await segments.move_to_segment(session, from_key, to_key, ids)

        moved, errors = await in_transaction(info, work)
        source, target = moved if moved is not None else (None, None)
        return MoveToSegmentPayload(segment=_segment(target), from_segment=_segment(source), user_errors=errors)
