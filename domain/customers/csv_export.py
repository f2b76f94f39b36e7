"""Customer export as CSV (the format: csv_format.py; no command-line concerns here): every
customer streamed in batches, with its tags, assignment and custom attributes."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from typing import TextIO

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.customers.csv_format import (
    ASSIGNMENT_COLUMNS,
    ATTRIBUTE_PREFIX,
    FIELD_COLUMNS,
    NOT_TEXT_COLUMNS,
    TAG_SEPARATOR,
    TAGS_COLUMN,
    attribute_text_cell,
    format_value,
    neutralised,
)
from segmenta.domain.customers.records import get_customer_attributes, get_customer_tags
from segmenta.storage.models import Customer, CustomerAttribute, Employee, Team

EXPORT_BATCH = 1000


def _attribute_cell(value: str | float | None, *, raw: bool) -> str:
    if raw or not isinstance(value, str):
        return format_value(value)
    return attribute_text_cell(value)


async def attribute_keys(session: AsyncSession) -> list[str]:
    rows = await session.execute(select(CustomerAttribute.key).distinct().order_by(CustomerAttribute.key))
    return list(rows.scalars())


async def count_customers(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(Customer))).scalar_one()


def export_header(keys: Sequence[str]) -> list[str]:
    return [*FIELD_COLUMNS, TAGS_COLUMN, *ASSIGNMENT_COLUMNS, *(ATTRIBUTE_PREFIX + key for key in keys)]


async def export_customers(
    session: AsyncSession,
    out: TextIO,
    *,
    batch_size: int = EXPORT_BATCH,
    progress: Callable[[int], None] | None = None,
    raw: bool = False,
) -> int:
    """Write every customer as CSV to `out`, streaming `batch_size` rows at a time; returns the row count.

    `progress` is called with the number of rows written after each batch.  Text cells
    a spreadsheet would run as formulas get a leading apostrophe unless `raw`.
    """
    keys = await attribute_keys(session)
    writer = csv.writer(out, lineterminator="\n")
    # The minimal quoting of a "\n"-terminated writer leaves a lone "\r" unquoted, which a
    # reader takes for a line end: a row holding one has all its cells quoted.
    quoting_writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    header = export_header(keys)
    writer.writerow(header)
    columns = [Customer.__table__.c[name] for name in FIELD_COLUMNS]
    query = (
        select(Customer.id, *columns, Team.key, Employee.email, Customer.assignment_locked)
        .outerjoin(Team, Team.id == Customer.team_id)
        .outerjoin(Employee, Employee.id == Customer.manager_id)
        .order_by(Customer.id)
        .execution_options(yield_per=batch_size)
    )
    written = 0
    result = await session.stream(query)
    async for batch in result.partitions(batch_size):
        ids = [row[0] for row in batch]
        tags = await get_customer_tags(session, ids)
        attributes = await get_customer_attributes(session, ids)
        for row in batch:
            customer_id, values = row[0], row[1:]
            cells = [format_value(value) for value in values[: len(FIELD_COLUMNS)]]
            cells.append(TAG_SEPARATOR.join(tags[customer_id]))
            cells.extend(format_value(value) for value in values[len(FIELD_COLUMNS) :])
            if not raw:
                cells = [
                    cell if column in NOT_TEXT_COLUMNS else neutralised(cell) for column, cell in zip(header, cells, strict=False)
                ]
            customer_attributes = attributes[customer_id]
            cells.extend(_attribute_cell(customer_attributes.get(key), raw=raw) for key in keys)
            (quoting_writer if any("\r" in cell for cell in cells) else writer).writerow(cells)
        written += len(batch)
        if progress is not None:
            progress(written)
    return written
