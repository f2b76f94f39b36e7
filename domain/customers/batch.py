"""Many customer updates in a constant number of statements (the CSV import's `--update` rows).

:func:`update_customers` has exactly the effect of calling
``domain.customers.profiles.update_customer(session, id, patch)`` for each (id, patch) in
order — same columns, manual tags, attributes, ``updated_at`` only when a column
changed, and real-time routing with the active ruleset (team, manager, dynamic
segments, rule tags, history with cause ``realtime``, change rows under the day's
realtime run, assignmentChanged events after commit) — but reads the customers,
their manual tags and their attributes once per batch, writes each table with one
executemany, and routes the whole batch with one
``domain.routing.realtime.reevaluate_customers`` call (which hands out managers in the
batch's order, as one call per customer would).

Row by row (update_customer) the same 500 customers cost ~8 statements each; here a
batch costs ~10 statements whatever its size.  tests/domain/test_csv_io.py compares
the two on random rows and rulesets on both databases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from segmenta.domain import validation as v
from segmenta.domain.customers.records import MANUAL, birthday_md, chunked, ensure_attribute_keys_allowed
from segmenta.domain.routing.realtime import RealtimeChange, reevaluate_customers
from segmenta.storage.models import Customer, CustomerAttribute, CustomerTag, utcnow

_customers = Customer.__table__
_tags = CustomerTag.__table__
_attributes = CustomerAttribute.__table__

Patch = Mapping[str, Any]
"""A patch as domain.customers.records.validate_customer_input(..., creating=False) returns it."""

AttributeValue = str | float


async def update_customers(session: AsyncSession, patches: Sequence[tuple[int, Patch]]) -> list[RealtimeChange]:
    """Apply validated patches to distinct existing customers, then re-route them all; flushes, never commits.

    Each patch must come from ``validate_customer_input(data, creating=False)`` and must
    not change the customer's code (a rename needs update_customer's uniqueness check):
    a ValueError otherwise, before anything is written.  A patch that would leave its
    customer more than validation.MAX_ATTRIBUTES attributes is a UserError, also before
    anything is written.  Returns what routing changed.
    """
    ids = [customer_id for customer_id, _ in patches]
    if len(set(ids)) != len(ids):
        raise ValueError("update_customers: each customer at most once per batch")
    if not patches:
        return []
    await session.flush()  # pending ORM changes first, as update_customer's own flush would
    now = utcnow()
    stored = await _read_columns(session, patches)
    for customer_id, patch in patches:
        if "code" in patch and patch["code"] != stored[customer_id]["code"]:
            raise ValueError(f"update_customers: customer {customer_id} would be renamed; use update_customer")
    merges = [(customer_id, patch["attributes"]) for customer_id, patch in patches if patch.get("attributes")]
    await _check_attribute_counts(session, merges)
    await _write_columns(session, patches, stored, now)
    await _write_manual_tags(session, [(customer_id, patch["tags"]) for customer_id, patch in patches if "tags" in patch])
    await _write_attributes(session, merges)
    return await reevaluate_customers(session, ids)


def _column_values(patch: Patch) -> dict[str, Any]:
    """The customer columns a patch sets (tags and attributes live in their own tables)."""
    values = {name: value for name, value in patch.items() if name not in ("tags", "attributes")}
    if "birthday" in values:
        values["birthday_md"] = birthday_md(values["birthday"])
    return values


async def _read_columns(session: AsyncSession, patches: Sequence[tuple[int, Patch]]) -> dict[int, dict[str, Any]]:
    """The stored values of the columns any patch sets (and the code), one statement per chunk."""
    names = {"code"}
    for _, patch in patches:
        names.update(_column_values(patch))
    columns = [_customers.c.id, *(_customers.c[name] for name in sorted(names))]
    stored: dict[int, dict[str, Any]] = {}
    for chunk in chunked([customer_id for customer_id, _ in patches]):
        for row in await session.execute(select(*columns).where(_customers.c.id.in_(chunk))):
            values = dict(row._mapping)
            stored[values.pop("id")] = values
    missing = [customer_id for customer_id, _ in patches if customer_id not in stored]
    if missing:
        raise ValueError(f"update_customers: no customer with id {missing[0]}")
    return stored


async def _write_columns(
    session: AsyncSession, patches: Sequence[tuple[int, Patch]], stored: Mapping[int, Mapping[str, Any]], now: datetime
) -> None:
    """UPDATE the customers whose values differ, one executemany per set of columns.

    As the ORM does for update_customer: a customer none of whose columns changes is
    not written, so its ``updated_at`` stays (tags and attributes do not touch it).
    """
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for customer_id, patch in patches:
        values = _column_values(patch)
        current = stored[customer_id]
        if all(current[name] == value for name, value in values.items()):
            continue
        by_columns.setdefault(tuple(sorted(values)), []).append(
            {"target_id": customer_id, "new_updated_at": now, **{f"new_{name}": value for name, value in values.items()}}
        )
    for names, rows in by_columns.items():
        statement = (
            update(_customers)
            .where(_customers.c.id == bindparam("target_id"))
            .values({**{name: bindparam(f"new_{name}") for name in names}, "updated_at": bindparam("new_updated_at")})
        )
        await session.execute(statement, rows)
        _refresh_loaded(session, names, rows, now)


def _refresh_loaded(session: AsyncSession, names: Sequence[str], rows: Sequence[Mapping[str, Any]], now: datetime) -> None:
    """Customer objects already in the session show the written values (as they would after update_customer)."""
    identity_map = session.sync_session.identity_map
    if not len(identity_map):
        return
    for row in rows:
        loaded = identity_map.get(identity_key(Customer, row["target_id"]))
        if loaded is None:
            continue
        for name in names:
            set_committed_value(loaded, name, row[f"new_{name}"])
        set_committed_value(loaded, "updated_at", now)


def _forget_loaded(session: AsyncSession, model: type[CustomerTag] | type[CustomerAttribute], customer_ids: set[int]) -> None:
    """Drop loaded tag/attribute objects of these customers: their rows are rewritten behind the ORM's back."""
    identity_map = session.sync_session.identity_map
    if not len(identity_map):
        return
    stale = [obj for obj in identity_map.values() if isinstance(obj, model) and obj.customer_id in customer_ids]
    for obj in stale:
        session.expunge(obj)


async def _write_manual_tags(session: AsyncSession, replacements: Sequence[tuple[int, Sequence[str]]]) -> None:
    """Each customer's manual tags become exactly the given ones (rule tags untouched)."""
    if not replacements:
        return
    ids = [customer_id for customer_id, _ in replacements]
    existing: dict[int, set[str]] = {customer_id: set() for customer_id in ids}
    for chunk in chunked(ids):
        rows = await session.execute(
            select(_tags.c.customer_id, _tags.c.tag).where(_tags.c.customer_id.in_(chunk), _tags.c.source == MANUAL)
        )
        for customer_id, tag in rows:
            existing[customer_id].add(tag)
    removed = [
        {"old_customer": customer_id, "old_tag": tag}
        for customer_id, tags in replacements
        for tag in sorted(existing[customer_id].difference(tags))
    ]
    added = [
        {"customer_id": customer_id, "tag": tag, "source": MANUAL}
        for customer_id, tags in replacements
        for tag in tags
        if tag not in existing[customer_id]
    ]
    _forget_loaded(session, CustomerTag, set(ids))
    if removed:
        await session.execute(
            delete(_tags).where(
                _tags.c.customer_id == bindparam("old_customer"),
                _tags.c.tag == bindparam("old_tag"),
                _tags.c.source == MANUAL,
            ),
            removed,
        )
    if added:
        await session.execute(insert(_tags), added)


async def _check_attribute_counts(
    session: AsyncSession, merges: Sequence[tuple[int, Mapping[str, AttributeValue | None]]]
) -> None:
    """As update_customer does per customer: no merge may leave more than MAX_ATTRIBUTES attributes,
    nor bring the database past MAX_ATTRIBUTE_KEYS distinct keys."""
    if not merges:
        return
    keys: dict[int, list[str]] = {}
    for chunk in chunked([customer_id for customer_id, _ in merges]):
        rows = await session.execute(
            select(_attributes.c.customer_id, _attributes.c.key).where(_attributes.c.customer_id.in_(chunk))
        )
        for customer_id, key in rows:
            keys.setdefault(customer_id, []).append(key)
    for customer_id, attributes in merges:
        kept = {key for key in keys.get(customer_id, ()) if key not in attributes}
        v.check_attribute_count(len(kept) + sum(value is not None for value in attributes.values()))
    await ensure_attribute_keys_allowed(
        session, {key for _, attributes in merges for key, value in attributes.items() if value is not None}
    )


async def _write_attributes(
    session: AsyncSession, merges: Sequence[tuple[int, Mapping[str, AttributeValue | None]]]
) -> None:
    """Set the given attributes (None removes one); attributes not named are kept."""
    if not merges:
        return
    ids = [customer_id for customer_id, _ in merges]
    keys = sorted({key for _, attributes in merges for key in attributes})
    existing: dict[tuple[int, str], tuple[str | None, float | None]] = {}
    for chunk in chunked(ids):
        rows = await session.execute(
            select(_attributes.c.customer_id, _attributes.c.key, _attributes.c.text_value, _attributes.c.number_value)
            .where(_attributes.c.customer_id.in_(chunk), _attributes.c.key.in_(keys))
        )
        for customer_id, key, text_value, number_value in rows:
            existing[(customer_id, key)] = (text_value, number_value)
    removed: list[dict[str, Any]] = []
    added: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for customer_id, attributes in merges:
        for key, value in attributes.items():
            current = existing.get((customer_id, key))
            if value is None:
                if current is not None:
                    removed.append({"old_customer": customer_id, "old_key": key})
                continue
            text_value, number_value = (value, None) if isinstance(value, str) else (None, value)
            if current is None:
                added.append(
                    {"customer_id": customer_id, "key": key, "text_value": text_value, "number_value": number_value}
                )
            elif current != (text_value, number_value):
                changed.append(
                    {"old_customer": customer_id, "old_key": key, "new_text": text_value, "new_number": number_value}
                )
    _forget_loaded(session, CustomerAttribute, set(ids))
    match = and_(_attributes.c.customer_id == bindparam("old_customer"), _attributes.c.key == bindparam("old_key"))
    if removed:
        await session.execute(delete(_attributes).where(match), removed)
    if changed:
        await session.execute(
            update(_attributes).where(match).values(text_value=bindparam("new_text"), number_value=bindparam("new_number")),
            changed,
        )
    if added:
        await session.execute(insert(_attributes), added)
