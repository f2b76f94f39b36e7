"""Manual segments: create, rename or describe, delete, and add, remove or move customers by hand.

Dynamic segments belong to the active ruleset (its `segment K = …` definitions keep
their members); hand edits to them would be overwritten by the next run, so they
are refused here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain import validation as v
from segmenta.domain.customers.records import chunked
from segmenta.domain.errors import Conflict, NotFound, UserError
from segmenta.storage.models import Customer, Segment, SegmentMember, utcnow

MANUAL = "manual"
DYNAMIC = "dynamic"
SEGMENT_KINDS = (MANUAL, DYNAMIC)
SEGMENT_FIELDS = ("key", "name", "description", "kind")
UPDATABLE_SEGMENT_FIELDS = ("key", "name", "description")


async def create_segment(session: AsyncSession, data: Mapping[str, Any]) -> Segment:
    """A manual segment; the name defaults to the key."""
    if not isinstance(data, Mapping):
        raise UserError("segment input must be an object")
    v.reject_unknown_keys(data, SEGMENT_FIELDS)
    key = v.rule_key(data.get("key"), "key", max_length=v.column_length(Segment, "key"))
    name = v.text(data.get("name"), "name", max_length=v.column_length(Segment, "name")) or key
    description = v.text(data.get("description"), "description", max_length=None)
    kind = v.word(data.get("kind"), "kind", SEGMENT_KINDS) or MANUAL
    if kind != MANUAL:
        raise UserError("dynamic segments are defined by the active ruleset, not created by hand", field="kind")
    if (await session.execute(select(Segment.id).where(Segment.key == key))).first() is not None:
        raise Conflict(f"a segment with key {key!r} already exists", field="key")
    segment = Segment(key=key, name=name, description=description, kind=MANUAL)
    session.add(segment)
    await v.flush_or_conflict(session, "key", f"a segment with key {key!r} already exists")
    return segment


async def get_segment(session: AsyncSession, key: str, *, field: str = "key") -> Segment:
    segment = None
    if isinstance(key, str):
        segment = (await session.execute(select(Segment).where(Segment.key == key))).scalar_one_or_none()
    if segment is None:
        raise NotFound("segment", key, field=field)
    return segment


MEMBERS_FOLLOW_RULES = "its members come from the rules and cannot be edited by hand"
SEGMENT_FOLLOWS_RULES = "it follows the ruleset that defines it; change or remove its definition in the rules instead"


async def _manual_segment(session: AsyncSession, key: str, field: str, why: str = MEMBERS_FOLLOW_RULES) -> Segment:
    segment = await get_segment(session, key, field=field)
    if segment.kind != MANUAL:
        raise UserError(f"segment {segment.key!r} is dynamic: {why}", field=field, code="dynamic_segment")
    return segment


async def update_segment(session: AsyncSession, key: str, patch: Mapping[str, Any]) -> Segment:
    """Change a manual segment's key, name or description (only the keys present).  A new key must be
    free (`conflict`); the name cannot be cleared.  A dynamic segment is refused (`dynamic_segment`):
    the active ruleset's `segment K = …` owns it, name included."""
    if not isinstance(patch, Mapping):
        raise UserError("segment input must be an object")
    v.reject_unknown_keys(patch, UPDATABLE_SEGMENT_FIELDS)
    values: dict[str, Any] = {}
    if "key" in patch:
        values["key"] = v.rule_key(patch["key"], "key", max_length=v.column_length(Segment, "key"))
    if "name" in patch:
        values["name"] = v.required_text(patch["name"], "name", max_length=v.column_length(Segment, "name"))
    if "description" in patch:
        values["description"] = v.text(patch["description"], "description", max_length=None)
    segment = await _manual_segment(session, key, "segment_key", SEGMENT_FOLLOWS_RULES)
    new_key = values.get("key")
    if new_key is not None and new_key != segment.key:
        taken = await session.execute(select(Segment.id).where(Segment.key == new_key, Segment.id != segment.id))
        if taken.first() is not None:
            raise Conflict(f"a segment with key {new_key!r} already exists", field="key")
    for field, value in values.items():
        setattr(segment, field, value)
    await v.flush_or_conflict(session, "key", f"a segment with key {segment.key!r} already exists")
    return segment


async def delete_segment(session: AsyncSession, key: str) -> int:
    """Delete a manual segment and its memberships (the customers stay); returns its id.  A dynamic
    segment is refused (`dynamic_segment`): it follows its ruleset, and the next apply would only
    create it again.  No rule can name a manual segment (rules name only segments they define), so
    no ruleset breaks."""
    segment = await _manual_segment(session, key, "segment_key", SEGMENT_FOLLOWS_RULES)
    segment_id = segment.id
    await session.execute(
        delete(SegmentMember).where(SegmentMember.segment_id == segment_id).execution_options(synchronize_session=False)
    )
    await session.delete(segment)
    await session.flush()
    return segment_id


async def _existing_customers(session: AsyncSession, customer_ids: Iterable[Any]) -> list[int]:
    """The validated ids; NotFound naming every id that has no customer."""
    ids = v.unique_ids(customer_ids, "customer_ids")
    found: set[int] = set()
    for chunk in chunked(ids):
        found.update((await session.execute(select(Customer.id).where(Customer.id.in_(chunk)))).scalars())
    missing = [customer_id for customer_id in ids if customer_id not in found]
    if missing:
        listed = ", ".join(str(customer_id) for customer_id in missing)
        raise UserError(f"no customer with id {listed}", field="customer_ids", code="not_found")
    return ids


async def _insert_members(session: AsyncSession, segment: Segment, customer_ids: list[int]) -> None:
    """Insert memberships; ones that already exist (even from a concurrent writer) are skipped."""
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    now = utcnow()
    for chunk in chunked(customer_ids, 1000):
        rows = [{"segment_id": segment.id, "customer_id": customer_id, "added_at": now} for customer_id in chunk]
        statement = insert(SegmentMember).values(rows).on_conflict_do_nothing(
            index_elements=["segment_id", "customer_id"]
        )
        await session.execute(statement)


async def _delete_members(session: AsyncSession, segment: Segment, customer_ids: list[int]) -> None:
    for chunk in chunked(customer_ids):
        await session.execute(
            delete(SegmentMember)
            .where(SegmentMember.segment_id == segment.id, SegmentMember.customer_id.in_(chunk))
            .execution_options(synchronize_session=False)
        )


async def add_to_segment(session: AsyncSession, key: str, customer_ids: Iterable[int]) -> Segment:
    """Add customers to a manual segment; customers already in it stay (idempotent)."""
    segment = await _manual_segment(session, key, "segment_key")
    ids = await _existing_customers(session, customer_ids)
    if ids:
        await _insert_members(session, segment, ids)
    await session.flush()
    return segment


async def remove_from_segment(session: AsyncSession, key: str, customer_ids: Iterable[int]) -> Segment:
    """Remove customers from a manual segment; customers not in it are ignored (idempotent)."""
    segment = await _manual_segment(session, key, "segment_key")
    ids = await _existing_customers(session, customer_ids)
    if ids:
        await _delete_members(session, segment, ids)
    await session.flush()
    return segment


async def move_to_segment(
    session: AsyncSession, from_key: str, to_key: str, customer_ids: Iterable[int]
) -> tuple[Segment, Segment]:
    """Afterwards the customers are in `to_key` and not in `from_key`, whether or not they were in `from_key`."""
    source = await _manual_segment(session, from_key, "from_key")
    target = await _manual_segment(session, to_key, "to_key")
    if source.id == target.id:
        raise UserError("a move needs two different segments", field="to_key")
    ids = await _existing_customers(session, customer_ids)
    if ids:
        await _delete_members(session, source, ids)
        await _insert_members(session, target, ids)
    await session.flush()
    return source, target


async def segment_customer_ids(session: AsyncSession, key: str) -> list[int]:
    """The ids of a segment's members, ascending."""
    segment = await get_segment(session, key)
    rows = await session.execute(
        select(SegmentMember.customer_id)
        .where(SegmentMember.segment_id == segment.id)
        .order_by(SegmentMember.customer_id)
    )
    return list(rows.scalars())
