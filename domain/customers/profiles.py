"""Customer profiles: create, update, delete, each routed again in real time.

Every function validates its whole input before the first statement (see
domain/validation.py) and flushes without committing: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain import validation as v
from segmenta.domain.customers.records import (
    MANUAL,
    birthday_md,
    ensure_attribute_keys_allowed,
    get_customer,
    validate_customer_input,
)
from segmenta.domain.errors import Conflict
from segmenta.domain.routing.realtime import reevaluate_customer
from segmenta.domain.routing.realtime_create import insert_customer
from segmenta.storage.models import Customer, CustomerAttribute, CustomerTag


async def _ensure_code_free(session: AsyncSession, code: str, *, except_id: int | None = None) -> None:
    query = select(Customer.id).where(Customer.code == code)
    if except_id is not None:
        query = query.where(Customer.id != except_id)
    if (await session.execute(query.limit(1))).first() is not None:
        raise Conflict(f"a customer with code {code!r} already exists", field="code")


def _attribute_row(customer_id: int, key: str, value: str | float) -> CustomerAttribute:
    if isinstance(value, str):
        return CustomerAttribute(customer_id=customer_id, key=key, text_value=value, number_value=None)
    return CustomerAttribute(customer_id=customer_id, key=key, text_value=None, number_value=value)


async def create_customer(session: AsyncSession, data: Mapping[str, Any]) -> Customer:
    """Validate and insert a customer, routed by the active ruleset in the same transaction.

    The routing is decided before the INSERT and written with it (domain/routing/realtime_create.py).
    """
    values = validate_customer_input(data, creating=True)
    tags: list[str] = values.pop("tags", [])
    attributes: dict[str, str | float | None] = values.pop("attributes", {})
    await ensure_attribute_keys_allowed(session, _set_keys(attributes))
    if values.get("created_at") is None:
        values.pop("created_at", None)
    return await insert_customer(session, values, tags, attributes)


async def reevaluate(session: AsyncSession, customer_id: int) -> None:
    """Real-time routing of the changed customer with the active ruleset (domain/routing/realtime.py)."""
    await reevaluate_customer(session, customer_id)


async def update_customer(session: AsyncSession, customer_id: int, patch: Mapping[str, Any]) -> Customer:
    values = validate_customer_input(patch, creating=False)
    customer = await get_customer(session, customer_id)
    replace_tags = "tags" in values
    tags: list[str] = values.pop("tags", [])
    attributes: dict[str, str | float | None] = values.pop("attributes", {})
    if "code" in values and values["code"] != customer.code:
        await _ensure_code_free(session, values["code"], except_id=customer.id)
    if attributes:
        await _check_attributes_kept(session, customer.id, attributes)
        await ensure_attribute_keys_allowed(session, _set_keys(attributes))

    for field, value in values.items():
        setattr(customer, field, value)
    if "birthday" in values:
        customer.birthday_md = birthday_md(values["birthday"])
    if replace_tags:
        await _replace_manual_tags(session, customer.id, tags)
    if attributes:
        await _merge_attributes(session, customer.id, attributes)
    await v.flush_or_conflict(session, "code", f"a customer with code {customer.code!r} already exists")
    await reevaluate(session, customer.id)
    return customer


async def _replace_manual_tags(session: AsyncSession, customer_id: int, tags: list[str]) -> None:
    existing = set(
        (
            await session.execute(
                select(CustomerTag.tag).where(CustomerTag.customer_id == customer_id, CustomerTag.source == MANUAL)
            )
        ).scalars()
    )
    removed = existing.difference(tags)
    if removed:
        await session.execute(
            delete(CustomerTag).where(
                CustomerTag.customer_id == customer_id,
                CustomerTag.source == MANUAL,
                CustomerTag.tag.in_(removed),
            )
        )
    session.add_all(
        CustomerTag(customer_id=customer_id, tag=tag, source=MANUAL) for tag in tags if tag not in existing
    )


def _set_keys(attributes: Mapping[str, str | float | None]) -> set[str]:
    return {key for key, value in attributes.items() if value is not None}


async def _check_attributes_kept(
    session: AsyncSession, customer_id: int, attributes: Mapping[str, str | float | None]
) -> None:
    """Refuse a merge that would leave the customer more than MAX_ATTRIBUTES attributes."""
    others = (
        await session.execute(
            select(func.count())
            .select_from(CustomerAttribute)
            .where(CustomerAttribute.customer_id == customer_id, CustomerAttribute.key.not_in(list(attributes)))
        )
    ).scalar_one()
    v.check_attribute_count(others + sum(value is not None for value in attributes.values()))


async def _merge_attributes(
    session: AsyncSession, customer_id: int, attributes: Mapping[str, str | float | None]
) -> None:
    rows = {
        row.key: row
        for row in (
            await session.execute(
                select(CustomerAttribute).where(
                    CustomerAttribute.customer_id == customer_id, CustomerAttribute.key.in_(list(attributes))
                )
            )
        ).scalars()
    }
    for key, value in attributes.items():
        row = rows.get(key)
        if value is None:
            if row is not None:
                await session.delete(row)
        elif row is None:
            session.add(_attribute_row(customer_id, key, value))
        elif isinstance(value, str):
            row.text_value, row.number_value = value, None
        else:
            row.text_value, row.number_value = None, value


async def delete_customer(session: AsyncSession, customer_id: int) -> None:
    """Delete the customer; its purchases, feedback, interactions, tags and memberships go with it."""
    customer = await get_customer(session, customer_id)
    await session.delete(customer)
    await session.flush()

