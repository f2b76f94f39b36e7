"""Customer import from CSV (the format: csv_format.py; no command-line concerns here).

Import streams the file in chunks of IMPORT_CHUNK rows and validates every row with
the very validation of `domain.customers.profiles.create_customer` / `update_customer` before
writing it, so a bad row is reported (line, column) and leaves nothing behind.  The
valid new rows of a chunk are inserted together, the valid `--update` rows updated
together (domain/customers/batch.py: the effect of update_customer row by row, routing
included), each group in a SAVEPOINT; a group the database refuses is undone and
retried row by row through the services, each row in its own SAVEPOINT, so a row is
always all or nothing.  Mode `skip` keeps the good rows; mode `strict` keeps nothing
when any row is bad.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.customers.batch import update_customers
from segmenta.domain.customers.csv_format import (
    FIELD_COLUMNS,
    CellError,
    CsvRow,
    RowError,
    check_header,
    column_of,
    parse_cells,
    records,
    unmarked_row,
)
from segmenta.domain.customers.profiles import create_customer, update_customer
from segmenta.domain.customers.records import (
    MANUAL,
    birthday_md,
    ensure_attribute_keys_allowed,
    validate_customer_input,
)
from segmenta.domain.errors import UserError
from segmenta.domain.routing.realtime import reevaluate_customers
from segmenta.storage.models import Customer, CustomerAttribute, CustomerTag, utcnow

ImportMode = Literal["skip", "strict"]

# Rows parsed, looked up and written together: one query finds the existing codes of a chunk.
IMPORT_CHUNK = 500


@dataclass
class ImportReport:
    imported: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)
    # Lines of rows with at least one error (a row is reported once per problem found).
    failed_lines: set[int] = field(default_factory=set)
    committed: bool = False

    @property
    def skipped(self) -> int:
        return len(self.failed_lines)

    @property
    def ok(self) -> bool:
        return not self.errors


async def _existing_ids(session: AsyncSession, codes: list[str]) -> dict[str, int]:
    if not codes:
        return {}
    rows = await session.execute(select(Customer.code, Customer.id).where(Customer.code.in_(codes)))
    return {code: ident for code, ident in rows.all()}


def _fail(report: ImportReport, line: int, column: str | None, message: str) -> None:
    report.errors.append(RowError(line, column, message))
    report.failed_lines.add(line)


def _code_cell(header: Sequence[str], cells: Sequence[str]) -> str:
    position = header.index("code")
    return cells[position].strip() if position < len(cells) else ""


async def _write_row(
    session: AsyncSession,
    row: CsvRow,
    header: Sequence[str],
    *,
    update: bool,
    known: dict[str, int],
    report: ImportReport,
) -> None:
    code = _code_cell(header, row.cells)
    existing_id = known.get(code) if update else None
    try:
        data = parse_cells(header, row.cells, patch=existing_id is not None, literal=row.literal)
    except CellError as error:
        _fail(report, row.line, error.column or None, error.message)
        return
    try:
        async with session.begin_nested():
            if existing_id is not None:
                await update_customer(session, existing_id, data)
            else:
                customer = await create_customer(session, data)
    except UserError as error:
        _fail(report, row.line, column_of(error, header), error.message)
        return
    except DBAPIError as error:  # a database limit the validation does not know; the savepoint undid the row
        _fail(report, row.line, None, f"the database refused the row: {error.orig}")
        return
    if existing_id is not None:
        report.updated += 1
    else:
        report.imported += 1
        known[customer.code] = customer.id  # a later row with this code updates it (or is a duplicate)


@dataclass(frozen=True)
class _NewCustomer:
    line: int
    values: dict[str, Any]  # validated by the customer service's own validation


def _validated_values(header: Sequence[str], row: CsvRow, report: ImportReport, *, creating: bool) -> dict[str, Any] | None:
    """The row's values as the customer service validates them; a bad row is reported (line, column): None."""
    try:
        data = parse_cells(header, row.cells, patch=not creating, literal=row.literal)
        return validate_customer_input(data, creating=creating)
    except CellError as error:
        _fail(report, row.line, error.column or None, error.message)
    except UserError as error:
        _fail(report, row.line, column_of(error, header), error.message)
    return None


def _validated_new(header: Sequence[str], row: CsvRow, report: ImportReport) -> _NewCustomer | None:
    values = _validated_values(header, row, report, creating=True)
    return None if values is None else _NewCustomer(row.line, values)


async def _insert_new(session: AsyncSession, new: list[_NewCustomer]) -> dict[str, int] | None:
    """Bulk-insert validated new customers in one SAVEPOINT; None (nothing written) if the database refuses
    or the rows' new attribute keys would pass the database's limit."""
    if not new:
        return {}
    keys = {key for item in new for key, value in item.values.get("attributes", {}).items() if value is not None}
    try:
        await ensure_attribute_keys_allowed(session, keys)
    except UserError:  # row by row, create_customer reports the rows with new keys past the limit
        return None
    now = utcnow()
    customers = [
        {
            **{column: item.values.get(column) for column in FIELD_COLUMNS},
            "created_at": item.values.get("created_at") or now,
            "updated_at": now,
            "birthday_md": birthday_md(item.values.get("birthday")),
        }
        for item in new
    ]
    try:
        async with session.begin_nested():
            await session.execute(insert(Customer.__table__), customers)
            ids = await _existing_ids(session, [item.values["code"] for item in new])
            tags = [
                {"customer_id": ids[item.values["code"]], "tag": tag, "source": MANUAL}
                for item in new
                for tag in item.values.get("tags", [])
            ]
            attributes = [
                {
                    "customer_id": ids[item.values["code"]],
                    "key": key,
                    "text_value": value if isinstance(value, str) else None,
                    "number_value": None if isinstance(value, str) else value,
                }
                for item in new
                for key, value in item.values.get("attributes", {}).items()
                if value is not None
            ]
            if tags:
                await session.execute(insert(CustomerTag.__table__), tags)
            if attributes:
                await session.execute(insert(CustomerAttribute.__table__), attributes)
            # What create_customer does last, for the whole batch: real-time routing.
            await reevaluate_customers(session, list(ids.values()))
    except DBAPIError:
        return None
    return ids


@dataclass(frozen=True)
class _Update:
    row: CsvRow
    customer_id: int
    values: dict[str, Any]  # validated by the customer service's own validation


def _validated_update(header: Sequence[str], row: CsvRow, customer_id: int, report: ImportReport) -> _Update | None:
    """What update_customer would validate first; a bad row is reported (line, column) and left out."""
    values = _validated_values(header, row, report, creating=False)
    return None if values is None else _Update(row, customer_id, values)


async def _write_updates(
    session: AsyncSession, batch: list[_Update], header: Sequence[str], *, known: dict[str, int], report: ImportReport
) -> None:
    """Valid update rows (distinct customers, in line order) in one SAVEPOINT, routed together.

    If the database (or the batch's attribute-count check) refuses the batch, nothing of
    it is kept and its rows are retried one by one, so the refusal is reported on the
    row that caused it.
    """
    if not batch:
        return
    try:
        async with session.begin_nested():
            await update_customers(session, [(item.customer_id, item.values) for item in batch])
    except (DBAPIError, UserError):  # a UserError: a row would keep too many attributes
        for item in batch:
            await _write_row(session, item.row, header, update=True, known=known, report=report)
        return
    report.updated += len(batch)


async def _update_rows(
    session: AsyncSession, rows: list[CsvRow], header: Sequence[str], *, known: dict[str, int], report: ImportReport
) -> None:
    """`--update` rows of existing codes: validated first, then written in batches (domain/customers/batch.py).

    A batch ends before a row whose customer it already holds, so a code repeated in
    the file is updated in line order, each time routed on what the row before wrote.
    Bad rows are reported and left out; the others are written as update_customer
    would write them one by one.
    """
    batch: list[_Update] = []
    in_batch: set[int] = set()
    for row in rows:
        code = _code_cell(header, row.cells)
        customer_id = known.get(code)
        if customer_id is None:  # no code: the service reports it, writing nothing
            await _write_row(session, row, header, update=True, known=known, report=report)
            continue
        item = _validated_update(header, row, customer_id, report)
        if item is None:
            continue
        renames = item.values.get("code", code) != code  # cannot happen from a CSV cell; kept exact anyway
        if customer_id in in_batch or renames:
            await _write_updates(session, batch, header, known=known, report=report)
            batch, in_batch = [], set()
        if renames:
            await _write_row(session, row, header, update=True, known=known, report=report)
            continue
        batch.append(item)
        in_batch.add(customer_id)
    await _write_updates(session, batch, header, known=known, report=report)


async def _write_chunk(
    session: AsyncSession, rows: list[CsvRow], header: Sequence[str], *, update: bool, report: ImportReport
) -> None:
    """New, valid rows go in one bulk insert; with `update` the rest in update batches, else one by one.

    Rows taking the one-by-one path get exactly the services' behaviour (here: the
    duplicate-code Conflict).  If the database refuses the bulk insert, every row of
    the chunk is written one by one, so the refusal is reported on the row that caused it.
    """
    existing = await _existing_ids(session, sorted({_code_cell(header, row.cells) for row in rows} - {""}))
    claimed: set[str] = set()
    new: list[_NewCustomer] = []
    one_by_one: list[CsvRow] = []
    by_line = {row.line: row for row in rows}
    for row in rows:
        code = _code_cell(header, row.cells)
        if not code or code in existing or code in claimed:
            one_by_one.append(row)
            continue
        validated = _validated_new(header, row, report)
        if validated is not None:
            claimed.add(code)
            new.append(validated)
    inserted = await _insert_new(session, new)
    if inserted is None:
        one_by_one.extend(by_line[item.line] for item in new)
        one_by_one.sort(key=lambda row: row.line)
    else:
        report.imported += len(inserted)
        existing.update(inserted)
        if update:
            await _update_rows(session, one_by_one, header, known=existing, report=report)
            return
    for row in one_by_one:
        await _write_row(session, row, header, update=update, known=existing, report=report)


async def import_customers(
    session: AsyncSession,
    lines: Iterable[str],
    *,
    mode: ImportMode = "skip",
    update: bool = False,
    raw: bool = False,
) -> ImportReport:
    """Import customers from CSV `lines` (any iterable of text lines, e.g. an open file).

    Owns its transaction: commits the good rows (mode `skip`, or `strict` without
    errors) and rolls back everything otherwise.  An existing code is updated when
    `update`, else reported by the service as a duplicate.  A bad header imports nothing.
    Unless `raw`, one leading apostrophe is taken off each text cell (see the module's doc).
    """
    if mode not in ("skip", "strict"):
        raise UserError(f"mode must be skip or strict, got {mode!r}", field="mode")
    report = ImportReport()
    try:
        rows = records(lines)
        first = next(rows, None)
        if first is None:
            _fail(report, 1, None, "the file is empty; expected a header line")
            return report
        header = [column.strip() for column in first[1]]
        header_errors = check_header(header, update=update)
        if header_errors:
            report.errors.extend(header_errors)
            report.failed_lines.add(first[0])
            return report
        pending: list[CsvRow] = []
        for line, cells in rows:
            pending.append(CsvRow(line, cells) if raw else unmarked_row(line, header, cells))
            if len(pending) >= IMPORT_CHUNK:
                await _write_chunk(session, pending, header, update=update, report=report)
                pending = []
        await _write_chunk(session, pending, header, update=update, report=report)
    except BaseException:
        await session.rollback()
        raise
    if mode == "strict" and not report.ok:
        await session.rollback()
        report.errors.sort(key=lambda error: error.line)
        report.imported = report.updated = 0
        return report
    await session.commit()
    report.errors.sort(key=lambda error: error.line)
    report.committed = True
    return report
