"""What a database knows that rule checking can use: team keys and the values seen per field."""

from __future__ import annotations

from sqlalchemy import Select, String, cast, literal, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.storage.models import Customer, CustomerAttribute, CustomerTag, Purchase, Team

# Text fields whose values repeat across customers; unique ones (code, email, phone...)
# would only make the lookup big without catching typos.
CATEGORICAL_FIELDS = ("industry", "region", "city", "country", "channel", "gender", "occupation")


async def load_known(session: AsyncSession) -> tuple[set[str], dict[str, set[str]]]:
    """(team keys, {field name: distinct values seen}) in two queries.

    Fields: the categorical customer columns, `tags` (manual tags),
    `product_categories` (purchase categories) and `attr.KEY` (text values of custom attributes).
    """
    team_keys = set((await session.scalars(select(Team.key))).all())
    sources: list[Select[str, str | None]] = [
        select(literal(name, String).label("field"), cast(getattr(Customer, name), String).label("value"))
        .where(getattr(Customer, name).is_not(None))
        for name in CATEGORICAL_FIELDS
    ]
    sources.append(
        select(literal("tags", String), CustomerTag.tag).where(CustomerTag.source == "manual")
    )
    sources.append(
        select(literal("product_categories", String), Purchase.category).where(Purchase.category.is_not(None))
    )
    sources.append(
        select(literal("attr.", String) + CustomerAttribute.key, CustomerAttribute.text_value).where(
            CustomerAttribute.text_value.is_not(None)
        )
    )
    known: dict[str, set[str]] = {}
    for field, value in (await session.execute(union(*sources))).all():
        if value is not None:  # always true (every source filters out NULL); narrows the type
            known.setdefault(field, set()).add(value)
    return team_keys, known
