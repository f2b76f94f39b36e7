"""Customer rows: validating a customer input, reading customers and their tags, attributes
and categories in batches, and the words every customer write shares (MANUAL, RULE).

Nothing here routes; profiles.py (which does) and domain/routing/ build on this module.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain import validation as v
from segmenta.domain.errors import NotFound, UserError
from segmenta.dsl.fields import CUSTOMER_KINDS, LIFECYCLES, PURCHASING_POWERS, SIZES
from segmenta.storage.models import Customer, CustomerAttribute, CustomerTag, Purchase

MANUAL = "manual"


RULE = "rule"


# Keeps `IN (...)` lists far below the bound-parameter limits of SQLite and asyncpg.
ID_CHUNK = 5000


_T = TypeVar("_T")


def chunked(items: Sequence[_T], size: int = ID_CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _length(column: str) -> int | None:
    return v.column_length(Customer, column)


def _free_text(column: str) -> Callable[[Any], Any]:
    return lambda value: v.text(value, column, max_length=_length(column))


# Field → validator returning the normalised column value.  `tags` and `attributes`
# are not columns; they are split off before the row is written.
_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "code": lambda value: v.required_text(value, "code", max_length=_length("code")),
    "name": lambda value: v.required_text(value, "name", max_length=_length("name")),
    "kind": lambda value: v.word(value, "kind", CUSTOMER_KINDS),
    "size": lambda value: v.word(value, "size", SIZES),
    "lifecycle": lambda value: v.word(value, "lifecycle", LIFECYCLES),
    "purchasing_power": lambda value: v.word(value, "purchasing_power", PURCHASING_POWERS),
    "industry": _free_text("industry"),
    "region": _free_text("region"),
    "city": _free_text("city"),
    "country": _free_text("country"),
    "channel": _free_text("channel"),
    "phone": _free_text("phone"),
    "address": _free_text("address"),
    "gender": _free_text("gender"),
    "occupation": _free_text("occupation"),
    "email": lambda value: v.email(value, "email", max_length=_length("email")),
    "age": lambda value: v.number(value, "age", minimum=0, maximum=150),
    "income": lambda value: v.number(value, "income", minimum=0),
    "birthday": lambda value: v.past_date(value, "birthday"),
    "created_at": lambda value: v.timestamp(value, "created_at"),
    "tags": lambda value: v.string_list(value, "tags", max_length=v.column_length(CustomerTag, "tag")),
    "attributes": lambda value: v.attributes(value, "attributes"),
}


CUSTOMER_FIELDS: tuple[str, ...] = tuple(_VALIDATORS)


REQUIRED_FIELDS = ("code", "name")


def birthday_md(birthday: date | None) -> int | None:
    """month * 100 + day, the indexed form days_to_birthday is computed from."""
    return None if birthday is None else birthday.month * 100 + birthday.day


def validate_customer_input(data: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """The cleaned column values of a customer input; raises UserError before anything is written."""
    if not isinstance(data, Mapping):
        raise UserError("customer input must be an object")
    v.reject_unknown_keys(data, CUSTOMER_FIELDS)
    if creating:
        for field in REQUIRED_FIELDS:
            if data.get(field) is None:
                raise UserError(f"{field} is required", field=field, code="required")
    values = {field: _VALIDATORS[field](value) for field, value in data.items()}
    if not creating and "created_at" in values and values["created_at"] is None:
        raise UserError("created_at cannot be cleared", field="created_at")
    return values


async def get_customer(session: AsyncSession, customer_id: int, *, field: str = "id") -> Customer:
    customer = await session.get(Customer, v.identifier(customer_id, field))
    if customer is None:
        raise NotFound("customer", customer_id, field=field)
    return customer


async def get_customer_by_code(session: AsyncSession, code: str) -> Customer | None:
    return (await session.execute(select(Customer).where(Customer.code == code))).scalar_one_or_none()


async def ensure_attribute_keys_allowed(session: AsyncSession, keys: Collection[str]) -> None:
    """Refuse keys that would take the database past MAX_ATTRIBUTE_KEYS distinct attribute keys.

    Each distinct key is a column of every exported row, so the count bounds an export's width.
    Keys already in use cost one indexed look-up; only a new key costs a count of the keys.
    """
    wanted = sorted(set(keys))
    if not wanted:
        return
    known: set[str] = set()
    for chunk in chunked(wanted):
        rows = await session.execute(
            select(CustomerAttribute.key).where(CustomerAttribute.key.in_(chunk)).distinct()
        )
        known.update(rows.scalars())
    new = len(wanted) - len(known)
    if not new:
        return
    in_use = (
        await session.execute(select(func.count(CustomerAttribute.key.distinct())))
    ).scalar_one()
    if in_use + new > v.MAX_ATTRIBUTE_KEYS:
        raise UserError(
            f"attributes: {new} new key(s) would make {in_use + new} distinct attribute keys in the database; "
            f"at most {v.MAX_ATTRIBUTE_KEYS} are allowed (each is an export column): reuse an existing key",
            field="attributes",
            code="too_many",
        )


async def get_customer_tags(
    session: AsyncSession, customer_ids: Collection[int], *, source: str | None = MANUAL
) -> dict[int, list[str]]:
    """Tags per customer, sorted; `source` 'manual' (default), 'rule', or None for both."""
    ids = list(dict.fromkeys(customer_ids))
    result: dict[int, list[str]] = {customer_id: [] for customer_id in ids}
    for chunk in chunked(ids):
        query = select(CustomerTag.customer_id, CustomerTag.tag).where(CustomerTag.customer_id.in_(chunk))
        if source is not None:
            query = query.where(CustomerTag.source == source)
        for customer_id, tag in await session.execute(query.order_by(CustomerTag.customer_id, CustomerTag.tag)):
            if tag not in result[customer_id]:
                result[customer_id].append(tag)
    return result


async def get_customer_attributes(
    session: AsyncSession, customer_ids: Collection[int]
) -> dict[int, dict[str, str | float | None]]:
    ids = list(dict.fromkeys(customer_ids))
    result: dict[int, dict[str, str | float | None]] = {customer_id: {} for customer_id in ids}
    for chunk in chunked(ids):
        query = select(
            CustomerAttribute.customer_id,
            CustomerAttribute.key,
            CustomerAttribute.text_value,
            CustomerAttribute.number_value,
        ).where(CustomerAttribute.customer_id.in_(chunk))
        for customer_id, key, text_value, number_value in await session.execute(query):
            result[customer_id][key] = text_value if text_value is not None else number_value
    return result


async def get_customer_categories(session: AsyncSession, customer_ids: Collection[int]) -> dict[int, set[str]]:
    """The distinct product categories each customer bought (the `product_categories` metric)."""
    ids = list(dict.fromkeys(customer_ids))
    result: dict[int, set[str]] = {customer_id: set() for customer_id in ids}
    for chunk in chunked(ids):
        query = (
            select(Purchase.customer_id, Purchase.category)
            .where(Purchase.customer_id.in_(chunk), Purchase.category.is_not(None))
            .distinct()
        )
        for customer_id, category in await session.execute(query):
            if category is not None:  # always true (the query excludes NULL); narrows the type
                result[customer_id].add(category)
    return result

