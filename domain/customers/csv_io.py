"""Customer import and export as CSV (no command-line concerns here).

Columns are the customer fields (docs/domain.md, 'Data model') by their snake_case names, `tags` as one
cell separated by `;`, and one `attr.KEY` column per custom attribute.  Export adds
`team` (team key), `manager` (manager e-mail) and `assignment_locked`; import accepts
and ignores those three, because assignment is the rules' (or assignManager's) job.

Import streams the file in chunks of IMPORT_CHUNK rows and validates every row with
the very validation of `domain.customers.profiles.create_customer` / `update_customer` before
writing it, so a bad row is reported (line, column) and leaves nothing behind.  The
valid new rows of a chunk are inserted together, the valid `--update` rows updated
together (domain/customers/batch.py: the effect of update_customer row by row, routing
included), each group in a SAVEPOINT; a group the database refuses is undone and
retried row by row through the services, each row in its own SAVEPOINT, so a row is
always all or nothing.  Mode `skip` keeps the good rows; mode `strict` keeps nothing
when any row is bad.

Spreadsheets run a cell that starts with `=`, `+`, `-`, `@`, tab or carriage return as
a formula.  Export therefore writes such a text cell with a leading apostrophe, which
spreadsheets take to mean "this is text" and do not display (OWASP's advice for CSV
injection); so does a text starting with an apostrophe itself, and an attribute text
that would otherwise read back as a number or as no value.  Import removes one leading
apostrophe from every text cell, as a spreadsheet does when it is typed, and takes an
attribute cell that had one as text: export then import changes nothing.  Numbers and
dates are not text cells and are written as they are.  `raw` exports and imports skip
both steps, for programs that read the file themselves.
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, TextIO

from sqlalchemy import func, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.customers.batch import update_customers
from segmenta.domain.customers.metrics import PROFILE_FIELDS
from segmenta.domain.customers.profiles import create_customer, update_customer
from segmenta.domain.customers.records import (
    MANUAL,
    birthday_md,
    ensure_attribute_keys_allowed,
    get_customer_attributes,
    get_customer_tags,
    validate_customer_input,
)
from segmenta.domain.errors import UserError
from segmenta.domain.routing.realtime import reevaluate_customers
from segmenta.domain.validation import MAX_NUMBER
from segmenta.storage.models import Customer, CustomerAttribute, CustomerTag, Employee, Team, utcnow

ImportMode = Literal["skip", "strict"]

# The profile columns of the data model, in the order the rule language lists them.
FIELD_COLUMNS: tuple[str, ...] = PROFILE_FIELDS
TAGS_COLUMN = "tags"
TAG_SEPARATOR = ";"
ASSIGNMENT_COLUMNS: tuple[str, ...] = ("team", "manager", "assignment_locked")
ATTRIBUTE_PREFIX = "attr."
NUMBER_COLUMNS = frozenset({"age", "income"})
# Cells written by format_value from numbers, dates and booleans: never a formula, never marked.
_NOT_TEXT_COLUMNS = NUMBER_COLUMNS | {"birthday", "created_at", "assignment_locked"}
KNOWN_COLUMNS = frozenset(FIELD_COLUMNS) | {TAGS_COLUMN} | frozenset(ASSIGNMENT_COLUMNS)

# Rows parsed, looked up and written together: one query finds the existing codes of a chunk.
IMPORT_CHUNK = 500
EXPORT_BATCH = 1000

# A plain decimal number; an attribute cell that is one is stored as a number, otherwise as text.
# (Stricter than float(): "nan", "inf" and "1_000" stay text.)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class RowError:
    """A problem in the file: `line` is the 1-based line where the CSV record starts."""

    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


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


class _CellError(Exception):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


@dataclass(frozen=True)
class _Row:
    line: int
    cells: list[str]
    # Positions of attribute cells that are text whatever they look like (they had a TEXT_MARK).
    literal: frozenset[int] = frozenset()


# -- spreadsheet formulas ----------------------------------------------------------------------

# What a spreadsheet reads as the start of a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A leading apostrophe: a spreadsheet shows the rest of the cell as text.
TEXT_MARK = "'"


def neutralised(text: str) -> str:
    """A text cell as export writes it: marked when a spreadsheet would run it or drop its apostrophe."""
    return TEXT_MARK + text if text.startswith((*FORMULA_STARTS, TEXT_MARK)) else text


def _attribute_text_cell(text: str) -> str:
    """An attribute's text value; also marked when import would otherwise take it for a number or for no value."""
    if _NUMBER.fullmatch(text.strip()) or not text.strip():
        return TEXT_MARK + text
    return neutralised(text)


def _unmarked_row(line: int, header: Sequence[str], cells: list[str]) -> _Row:
    """The row with one leading apostrophe taken off every text cell; marked attribute cells stay text."""
    marked = [position for position, cell in enumerate(cells) if cell[:1] == TEXT_MARK]
    if not marked:  # most rows: nothing to take off
        return _Row(line, cells)
    plain = list(cells)
    literal: set[int] = set()
    for position in marked:
        column = header[position] if position < len(header) else ""
        if column in _NOT_TEXT_COLUMNS:
            continue
        plain[position] = cells[position][len(TEXT_MARK) :]
        if column.startswith(ATTRIBUTE_PREFIX):
            literal.add(position)
    return _Row(line, plain, frozenset(literal))


# -- header ------------------------------------------------------------------------------------


def check_header(header: Sequence[str], *, update: bool) -> list[RowError]:
    """Errors of the header line (line 1): unknown, repeated or missing columns."""
    errors: list[RowError] = []
    seen: set[str] = set()
    for column in header:
        if column in seen:
            errors.append(RowError(1, column, "column appears more than once"))
        seen.add(column)
        if column in KNOWN_COLUMNS:
            continue
        if column.startswith(ATTRIBUTE_PREFIX) and len(column) > len(ATTRIBUTE_PREFIX):
            continue
        hint = difflib.get_close_matches(column, sorted(KNOWN_COLUMNS), n=1)
        suffix = f"; did you mean {hint[0]}?" if hint else f"; custom attributes are {ATTRIBUTE_PREFIX}KEY"
        errors.append(RowError(1, column or "(empty)", f"unknown column{suffix}"))
    required = ("code",) if update else ("code", "name")
    for column in required:
        if column not in seen:
            errors.append(RowError(1, column, f"required column {column} is missing"))
    return errors


# -- cells -------------------------------------------------------------------------------------


def _number_cell(column: str, raw: str) -> float:
    stripped = raw.strip()
    if not _NUMBER.fullmatch(stripped):
        raise _CellError(column, f"{column} must be a number, got {raw!r}")
    return float(stripped)


def attribute_value(raw: str) -> str | float:
    """A number when the cell is a plain decimal number within the numbers' limit, the text otherwise.

    A longer run of digits (an account number, say) stays text: as a number it would be
    refused, or rounded.
    """
    stripped = raw.strip()
    if not _NUMBER.fullmatch(stripped):
        return raw
    value = float(stripped)
    return value if abs(value) <= MAX_NUMBER else raw


def split_tags(raw: str) -> list[str]:
    return [tag.strip() for tag in raw.split(TAG_SEPARATOR) if tag.strip()]


def parse_cells(
    header: Sequence[str], cells: Sequence[str], *, patch: bool, literal: frozenset[int] = frozenset()
) -> dict[str, Any]:
    """The service input for one row.

    For a new customer empty cells are left out; for an update (`patch`) every column
    of the file is set, an empty cell clearing that field (tags emptied, attribute removed).
    Attribute cells at the `literal` positions are text as they stand.
    """
    if len(cells) != len(header):
        raise _CellError("", f"the row has {len(cells)} cells but the header has {len(header)} columns")
    data: dict[str, Any] = {}
    attributes: dict[str, str | float | None] = {}
    for position, (column, raw) in enumerate(zip(header, cells, strict=True)):
        empty = raw.strip() == ""
        if column in ASSIGNMENT_COLUMNS:
            continue
        if column.startswith(ATTRIBUTE_PREFIX):
            key = column[len(ATTRIBUTE_PREFIX) :]
            if position in literal:
                attributes[key] = raw
            elif not empty:
                attributes[key] = attribute_value(raw)
            elif patch:
                attributes[key] = None
        elif column == TAGS_COLUMN:
            if not empty or patch:
                data["tags"] = split_tags(raw)
        elif empty:
            if patch:
                data[column] = None
        elif column in NUMBER_COLUMNS:
            data[column] = _number_cell(column, raw)
        else:
            data[column] = raw
    if attributes:
        data["attributes"] = attributes
    return data


def _column_of(error: UserError, header: Sequence[str]) -> str | None:
    """The CSV column a service error points at."""
    if error.field is None:
        return None
    if error.field == "attributes":
        for column in header:
            if not column.startswith(ATTRIBUTE_PREFIX):
                continue
            key = column[len(ATTRIBUTE_PREFIX) :]
            if repr(key) in error.message or f"attributes.{key} " in error.message:
                return column
    return error.field


# -- import ------------------------------------------------------------------------------------


def _records(lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """CSV records with the line each starts on (quoted cells may span lines)."""
    reader = csv.reader(lines, strict=True)
    previous_end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise UserError(f"line {reader.line_num}: malformed CSV: {error}", code="malformed_csv") from error
        start = previous_end + 1
        previous_end = reader.line_num
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue  # blank line
        yield start, cells


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
    row: _Row,
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
    except _CellError as error:
        _fail(report, row.line, error.column or None, error.message)
        return
    try:
        async with session.begin_nested():
            if existing_id is not None:
                await update_customer(session, existing_id, data)
            else:
                customer = await create_customer(session, data)
    except UserError as error:
        _fail(report, row.line, _column_of(error, header), error.message)
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


def _validated_values(header: Sequence[str], row: _Row, report: ImportReport, *, creating: bool) -> dict[str, Any] | None:
    """The row's values as the customer service validates them; a bad row is reported (line, column): None."""
    try:
        data = parse_cells(header, row.cells, patch=not creating, literal=row.literal)
        return validate_customer_input(data, creating=creating)
    except _CellError as error:
        _fail(report, row.line, error.column or None, error.message)
    except UserError as error:
        _fail(report, row.line, _column_of(error, header), error.message)
    return None


def _validated_new(header: Sequence[str], row: _Row, report: ImportReport) -> _NewCustomer | None:
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
    row: _Row
    customer_id: int
    values: dict[str, Any]  # validated by the customer service's own validation


def _validated_update(header: Sequence[str], row: _Row, customer_id: int, report: ImportReport) -> _Update | None:
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
    session: AsyncSession, rows: list[_Row], header: Sequence[str], *, known: dict[str, int], report: ImportReport
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
    session: AsyncSession, rows: list[_Row], header: Sequence[str], *, update: bool, report: ImportReport
) -> None:
    """New, valid rows go in one bulk insert; with `update` the rest in update batches, else one by one.

    Rows taking the one-by-one path get exactly the services' behaviour (here: the
    duplicate-code Conflict).  If the database refuses the bulk insert, every row of
    the chunk is written one by one, so the refusal is reported on the row that caused it.
    """
    existing = await _existing_ids(session, sorted({_code_cell(header, row.cells) for row in rows} - {""}))
    claimed: set[str] = set()
    new: list[_NewCustomer] = []
    one_by_one: list[_Row] = []
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
        records = _records(lines)
        first = next(records, None)
        if first is None:
            _fail(report, 1, None, "the file is empty; expected a header line")
            return report
        header = [column.strip() for column in first[1]]
        header_errors = check_header(header, update=update)
        if header_errors:
            report.errors.extend(header_errors)
            report.failed_lines.add(first[0])
            return report
        pending: list[_Row] = []
        for line, cells in records:
            pending.append(_Row(line, cells) if raw else _unmarked_row(line, header, cells))
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


# -- export ------------------------------------------------------------------------------------


def format_value(value: Any) -> str:
    """One cell: empty for missing, ISO dates, whole numbers without `.0`, true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def _attribute_cell(value: str | float | None, *, raw: bool) -> str:
    if raw or not isinstance(value, str):
        return format_value(value)
    return _attribute_text_cell(value)


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
                    cell if column in _NOT_TEXT_COLUMNS else neutralised(cell) for column, cell in zip(header, cells, strict=False)
                ]
            customer_attributes = attributes[customer_id]
            cells.extend(_attribute_cell(customer_attributes.get(key), raw=raw) for key in keys)
            (quoting_writer if any("\r" in cell for cell in cells) else writer).writerow(cells)
        written += len(batch)
        if progress is not None:
            progress(written)
    return written
