"""Mutations on manual segments: create, update, delete, add, remove, move."""

from __future__ import annotations

from typing import Annotated

import strawberry

from segmenta.domain.routing import segments
from segmenta.schema.context import Info
from segmenta.schema.ids import encode_id
from segmenta.schema.inputs import SegmentInput, SegmentPatch, as_create_data, as_patch
from segmenta.schema.payloads import (
    DeleteSegmentPayload,
    MoveToSegmentPayload,
    SegmentPayload,
    in_transaction,
    input_ids,
)
from segmenta.schema.permissions import CanWriteSegments
from segmenta.schema.types import Segment
from segmenta.storage import models


def _segment(row: models.Segment | None) -> Segment | None:
    return Segment.from_row(row) if row is not None else None


@strawberry.type
class SegmentMutation:
    @strawberry.mutation(
        permission_classes=[CanWriteSegments],
        description="Create a MANUAL segment; a key already taken is CONFLICT. Roles: admin, manager.",
    )
    async def create_segment(
        self, info: Info, input: Annotated[SegmentInput, strawberry.argument(description="The new segment.")]
    ) -> SegmentPayload:
        session = info.context.session
        row, errors = await in_transaction(
            info, lambda: segments.create_segment(session, as_create_data(input)), prefix="input"
        )
        return SegmentPayload(segment=_segment(row), user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanWriteSegments],
        description=(
            "Rename or describe a MANUAL segment (a DYNAMIC one is refused with DYNAMIC_SEGMENT: its ruleset "
            "owns it); a new key already taken is CONFLICT. Roles: admin, manager."
        ),
    )
    async def update_segment(
        self,
        info: Info,
        segment_key: Annotated[str, strawberry.argument(description="The segment's current key.")],
        input: Annotated[SegmentPatch, strawberry.argument(description="The fields to change.")],
    ) -> SegmentPayload:
        session = info.context.session
        row, errors = await in_transaction(
            info,
            lambda: segments.update_segment(session, segment_key, as_patch(input)),
            prefix="input",
            arguments={"segment_key"},
        )
        return SegmentPayload(segment=_segment(row), user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanWriteSegments],
        description=(
            "Delete a MANUAL segment and its memberships; the customers stay. A DYNAMIC segment is refused "
            "with DYNAMIC_SEGMENT: it follows its ruleset. Roles: admin, manager."
        ),
    )
    async def delete_segment(
        self,
        info: Info,
        segment_key: Annotated[str, strawberry.argument(description="The key of the segment to delete.")],
    ) -> DeleteSegmentPayload:
        session = info.context.session
        deleted, errors = await in_transaction(
            info, lambda: segments.delete_segment(session, segment_key), arguments={"segment_key"}
        )
        return DeleteSegmentPayload(
            deleted_id=strawberry.ID(encode_id("Segment", deleted)) if deleted is not None else None,
            deleted_key=segment_key if deleted is not None else None,
            user_errors=errors,
        )

    @strawberry.mutation(
        permission_classes=[CanWriteSegments],
        description=(
            "Add customers to a MANUAL segment (a DYNAMIC one is refused: the rules keep it); customers already "
            "in stay in. Roles: admin, manager."
        ),
    )
    async def add_to_segment(
        self,
        info: Info,
        segment_key: Annotated[str, strawberry.argument(description="The MANUAL segment's key.")],
        customer_ids: Annotated[list[strawberry.ID], strawberry.argument(description="The customers (Customer IDs).")],
    ) -> SegmentPayload:
        session = info.context.session

        async def work() -> models.Segment:
            ids = input_ids(customer_ids, "Customer", "customer_ids")
            return await segments.add_to_segment(session, segment_key, ids)

        row, errors = await in_transaction(info, work)
        return SegmentPayload(segment=_segment(row), user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanWriteSegments],
        description=(
            "Remove customers from a MANUAL segment (a DYNAMIC one is refused); customers not in it are "
            "ignored. Roles: admin, manager."
        ),
    )
    async def remove_from_segment(
        self,
        info: Info,
        segment_key: Annotated[str, strawberry.argument(description="The MANUAL segment's key.")],
        customer_ids: Annotated[list[strawberry.ID], strawberry.argument(description="The customers (Customer IDs).")],
    ) -> SegmentPayload:
        session = info.context.session

        async def work() -> models.Segment:
            ids = input_ids(customer_ids, "Customer", "customer_ids")
            return await segments.remove_from_segment(session, segment_key, ids)

        row, errors = await in_transaction(info, work)
        return SegmentPayload(segment=_segment(row), user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanWriteSegments],
        description=(
            "Remove the customers from `fromKey` and add them to `toKey`, in one transaction; both must be "
            "MANUAL segments. Roles: admin, manager."
        ),
    )
    async def move_to_segment(
        self,
        info: Info,
        from_key: Annotated[str, strawberry.argument(description="The key of the MANUAL segment they leave.")],
        to_key: Annotated[str, strawberry.argument(description="The key of the MANUAL segment they join.")],
        customer_ids: Annotated[list[strawberry.ID], strawberry.argument(description="The customers (Customer IDs).")],
    ) -> MoveToSegmentPayload:
        session = info.context.session

        async def work() -> tuple[models.Segment, models.Segment]:
            ids = input_ids(customer_ids, "Customer", "customer_ids")
            return await segments.move_to_segment(session, from_key, to_key, ids)

        moved, errors = await in_transaction(info, work)
        source, target = moved if moved is not None else (None, None)
        return MoveToSegmentPayload(segment=_segment(target), from_segment=_segment(source), user_errors=errors)
